package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

// Rebuilding is what Rebuild rebuilds a lost record from.
type Rebuilding struct {
	// Observed is what the cluster holds for the session.
	Observed *Observed
	// Durable is the session's durable record: a live one is rebuilt; a deleted one, or
	// none, makes a complete set of objects a new session (adopted), keeping the deleted
	// record's owner and last backup.
	Durable *Session
	// ExpiresNotBefore bounds an adopted session's expiry from below, so a session adopted
	// long after its creation is not deleted the moment it is adopted.
	ExpiresNotBefore time.Time
	// DryRun answers the record Rebuild would write, and writes (and locks) nothing.
	DryRun bool
}

// Rebuild writes the record of a session the store lost (internal/reconcile finds them), its
// state derived from what the cluster shows: 0 replicas → sleeping, ready → running,
// otherwise on its way up (creating or waking). A rebuilt session that was deleting goes on
// deleting (its volume is backed up again first), a failed one stays failed, and an
// incomplete set is applied again (pending apply).
//
// It works under the session's lock without waiting (KindBusy when another transition holds
// it) and never overwrites: a record that exists is a KindConflict.
func (s *Service) Rebuild(ctx context.Context, in Rebuilding) (*Session, error) {
	o := in.Observed
	live := in.Durable != nil && in.Durable.State != StateDeleted
	if !live && !o.Complete {
		return nil, Conflict("session %s has no record and an incomplete set of objects: nothing to adopt", o.ID)
	}
	now := s.opts.Now().UTC()
	var sess *Session
	if live {
		sess = s.rebuilt(o, in.Durable, now)
	} else {
		sess = s.adopted(o, in.Durable, now, in.ExpiresNotBefore)
	}
	if in.DryRun {
		return sess, nil
	}
	ctx, end, err := s.lock(ctx, o.ID, 0)
	if err != nil {
		return nil, err
	}
	defer end()
	if _, err := s.store.Get(ctx, o.ID); err == nil {
		return nil, Conflict("session %s: a record appeared meanwhile", o.ID)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if sess.State == StateDeleting && sess.Pending == PendingRemoval {
		// nothing left to back up: delete what remains (never a volume: there is none)
		if err := s.cluster.DeleteWorkspace(ctx, o.ID, false); err != nil {
			return nil, fmt.Errorf("deleting the rest of deleting session %s: %w", o.ID, err)
		}
	}
	ok, err := s.store.Reserve(ctx, lockOf(ctx), sess)
	if err != nil {
		return nil, fmt.Errorf("writing the record of session %s: %w", o.ID, err)
	}
	if !ok {
		return nil, &Error{Kind: KindInternal, Message: fmt.Sprintf("session %s: a record appeared under the lock: not overwritten", o.ID)}
	}
	if sess.State.Awake() {
		if err := s.store.Touch(ctx, sess.ID, sess.LastActivity); err != nil {
			s.log.Warn("recording activity", "id", sess.ID, "err", err)
		}
	}
	return sess, nil
}

// observedState is the state the cluster shows: 0 replicas → sleeping, ready → running,
// otherwise on its way up (creating for a new session, waking for one that existed).
func observedState(o *Observed, fresh bool) (State, Pending) {
	switch {
	case o.DesiredReplicas == 0:
		return StateSleeping, PendingNone
	case o.Ready:
		return StateRunning, PendingNone
	case fresh:
		return StateCreating, PendingReady
	}
	return StateWaking, PendingReady
}

// rebuilt is the record of a session the durable record d knows, as the cluster shows it (o).
func (s *Service) rebuilt(o *Observed, d *Session, now time.Time) *Session {
	sess := d.Clone()
	sess.Password = ""
	sess.UserID = cmp.Or(d.UserID, o.UserID, "unknown")
	sess.Image = cmp.Or(d.Image, o.Image)
	sess.Storage = cmp.Or(d.Storage, o.Storage)
	sess.CPU = cmp.Or(d.CPU, o.CPU)
	sess.Memory = cmp.Or(d.Memory, o.Memory)
	if sess.IdleTimeout == 0 && o.IdleTimeout > 0 {
		sess.IdleTimeout = Duration(o.IdleTimeout)
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = o.Created
	}
	if sess.WorkspaceURL == "" {
		sess.WorkspaceURL = s.URL(o.ID)
	}
	if sess.Labels == nil && len(o.Labels) > 0 {
		sess.Labels = maps.Clone(o.Labels)
	}
	// A zero ExpiresAt is kept: the session asked for ttl 0 and never expires. (Filling one in
	// would have the sweep delete a workspace its owner asked to keep.)
	sess.UpdatedAt = now
	switch {
	case d.State == StateDeleting:
		// Go on deleting. A volume is always backed up again first: whether this delete
		// skipped the backup is not recorded, and a volume is never removed on a guess.
		sess.State, sess.Reason = StateDeleting, ""
		if o.Has(ObjectPVC) {
			sess.Await(PendingBackup, now)
			sess.Attempt = max(sess.Attempt, 1)
		} else {
			sess.Await(PendingRemoval, now)
		}
	case d.State == StateFailed:
		// a failed backup: the volume stays until a retried delete; a failed restore: until
		// a wake tries it again
		sess.Await(PendingNone, now)
	case sess.restoring():
		// Its volume was being filled: the restore goes on (the same attempt, so a Job that
		// still runs is waited for, not doubled), and the workspace starts only after it.
		if d.State != StateSleeping {
			sess.State = StateCreating
		}
		sess.Reason = ""
		sess.Await(PendingRestore, now)
		if !o.Complete {
			sess.Await(PendingApply, now)
		}
	default:
		st, pending := observedState(o, d.State == StateCreating)
		sess.State = st
		sess.Await(pending, now)
		if !o.Has(ObjectDeployment) {
			// no replicas to read: keep what was asked for (the next touch applies it again)
			switch d.State {
			case StateSleeping, StateCreating:
				sess.State = d.State
			default:
				sess.State = StateWaking
			}
		}
		if sess.State != d.State {
			sess.Reason = ""
		}
		if !o.Complete {
			sess.Await(PendingApply, now)
		}
		if sess.State.Awake() {
			// The activity went with the store: start the idle clock again rather than
			// putting someone's open workspace to sleep on lost data.
			sess.LastActivity = now
		}
	}
	return sess
}

// adopted is a new session made of a complete set of objects no live record owns; d is a
// deleted durable record of the same id, or nil.
func (s *Service) adopted(o *Observed, d *Session, now, expiresNotBefore time.Time) *Session {
	st, pending := observedState(o, true)
	sess := &Session{
		ID: o.ID, UserID: cmp.Or(o.UserID, "unknown"), State: st,
		WorkspaceURL: s.URL(o.ID), Image: o.Image, Storage: o.Storage, CPU: o.CPU, Memory: o.Memory,
		IdleTimeout: Duration(s.opts.IdleTimeout), BackupOnDelete: true, Labels: maps.Clone(o.Labels),
		CreatedAt: o.Created, UpdatedAt: now, LastActivity: now,
		ExpiresAt: latest(o.Created.Add(s.opts.SessionTTL), expiresNotBefore),
	}
	sess.Await(pending, now)
	if o.IdleTimeout > 0 {
		sess.IdleTimeout = Duration(o.IdleTimeout)
	}
	// The cluster does not record the cap: an adopted session gets the deployment's.
	sess.IdleConnectedMax = defaultConnectedMax(s.opts.IdleConnectedMax, sess.IdleTimeout)
	if d != nil { // a deleted record of the same id: its owner and its last backup
		sess.UserID = cmp.Or(d.UserID, sess.UserID)
		sess.BackupLocation = d.BackupLocation
		sess.Attempt = d.Attempt
	}
	return sess
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
