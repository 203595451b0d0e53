package sweep

import (
	"context"
	"fmt"
	"time"
)

// DefaultStuckAfter is Options.StuckAfter's default: longer than a step takes when the
// cluster is well (a pod is ready in minutes; a backup Job is stopped at its deadline, 30m by
// default), short enough to be seen within the hour.
const DefaultStuckAfter = 30 * time.Minute

// MaxStuckListed is the most stuck sessions one Report names; StuckCount counts them all.
const MaxStuckListed = 50

// StuckSession is a session that has been in one pending step for longer than
// Options.StuckAfter.
type StuckSession struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	// Step is the pending step ("await-apply", "await-ready", "await-backup",
	// "await-removal").
	Step string `json:"step"`
	// Since is when the session entered the step; StuckSeconds how long ago that was, when
	// the sweep read it.
	Since        time.Time `json:"since"`
	StuckSeconds int64     `json:"stuck_seconds"`
}

// stuck names the sessions stuck in a pending step in the report, and logs each at WARN.
// It reads the store once, whatever the sweep's time left: it is what an operator is alerted
// by.
func (s *Sweeper) stuck(ctx context.Context, t *tally) error {
	now := s.now()
	sessions, n, err := s.store.Stuck(ctx, now.Add(-s.opts.StuckAfter), MaxStuckListed)
	if err != nil {
		t.add(func(r *Report) { r.Errors++ })
		return fmt.Errorf("reading stuck sessions: %w", err)
	}
	list := make([]StuckSession, 0, len(sessions))
	for _, sess := range sessions {
		st := StuckSession{ID: sess.ID, UserID: sess.UserID, Step: string(sess.Pending), Since: sess.PendingSince.UTC(),
			StuckSeconds: int64(now.Sub(sess.PendingSince) / time.Second)}
		list = append(list, st)
		s.log.WarnContext(ctx, "session stuck in a pending step", "id", st.ID, "step", st.Step, "user_id", st.UserID,
			"state", sess.State, "since", st.Since, "stuck_for", now.Sub(sess.PendingSince).Round(time.Second))
	}
	if n > len(list) {
		s.log.WarnContext(ctx, "more sessions stuck in a pending step than the report names", "stuck", n, "named", len(list))
	}
	t.add(func(r *Report) {
		r.StuckCount = n
		if len(list) > 0 {
			r.Stuck = list
		}
	})
	return nil
}
