package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// poll reads workspace id until done reports true or an error, backing off from pollMin to
// pollMax. Each read is an Await: while the workspace starts, the control plane holds it until
// the workspace runs (or session.MaxAwait), so a create or a wake is seen done the moment it
// is, and the next read follows at once. Every read also drives the workspace's pending step
// forward (the session core's rule: whoever comes next moves it), so polling is what completes
// a create, a wake or a delete in direct mode. A NotFound is handed to done as a nil session.
func (c *client) poll(ctx context.Context, id, what string, done func(*session.Session) (bool, error)) (*session.Session, error) {
	delay := c.pollMin
	var last *session.Session
	var lastErr error
	for {
		asked := time.Now()
		sess, err := c.m.Await(ctx, id, session.MaxAwait)
		switch {
		case errors.Is(err, session.ErrNotFound):
			ok, derr := done(nil)
			if derr != nil || ok {
				return nil, derr
			}
		case err != nil && !retryable(err):
			return last, fmt.Errorf("waiting for workspace %s to %s: %w", id, what, err)
		case err != nil:
			lastErr = err
		default:
			last, lastErr = sess, nil
			ok, derr := done(sess)
			if derr != nil || ok {
				return sess, derr
			}
		}
		t := time.NewTimer(delay - time.Since(asked)) // a read that waited has paused already
		select {
		case <-ctx.Done():
			t.Stop()
			status := "unknown"
			if last != nil {
				status = string(last.State)
				if last.Reason != "" {
					status += " (" + last.Reason + ")"
				}
			}
			if lastErr != nil {
				return last, fmt.Errorf("waiting for workspace %s to %s: %w (last status %s; last error: %w)", id, what, errTimeout, status, lastErr)
			}
			return last, fmt.Errorf("waiting for workspace %s to %s: %w (last status %s)", id, what, errTimeout, status)
		case <-t.C:
		}
		delay = min(delay*3/2, c.pollMax)
		tflog.Trace(ctx, "polling workspace", map[string]any{"id": id, "for": what})
	}
}

// waitSettled waits until the workspace reaches want (running or sleeping). A failed or
// deleted workspace ends the wait with an error.
func (c *client) waitSettled(ctx context.Context, id string, want session.State) (*session.Session, error) {
	return c.poll(ctx, id, "become "+string(want), func(s *session.Session) (bool, error) {
		if s == nil {
			return false, session.NotFound(id)
		}
		switch s.State {
		case want:
			return true, nil
		case session.StateFailed:
			return false, fmt.Errorf("workspace %s failed: %s", id, s.Reason)
		case session.StateDeleting, session.StateDeleted:
			return false, fmt.Errorf("workspace %s is %s", id, s.State)
		}
		return false, nil
	})
}
