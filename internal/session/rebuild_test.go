package session_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// What the cluster shows × what the durable record says → the restored record.
func TestRebuild(t *testing.T) {
	all6 := session.WorkspaceKinds
	obs := func(id string, kinds []session.ObjectKind, replicas int32, ready bool) *session.Observed {
		return &session.Observed{ID: id, UserID: "k8s@x", Kinds: slices.Clone(kinds), Complete: len(kinds) == 6,
			DesiredReplicas: replicas, Ready: ready, Created: sessionEpoch.Add(-time.Hour), Image: "img:k8s"}
	}
	dur := func(st session.State) *session.Session {
		return &session.Session{ID: "x", UserID: "fs@x", State: st, Image: "img:fs", CreatedAt: sessionEpoch.Add(-time.Hour),
			Attempt: 0, Reason: "old reason"}
	}
	restoring := func(st session.State) *session.Session {
		d := dur(st)
		d.RestoreFrom, d.Attempt = "pvc://backups/ab000012/ab000012-20260301T000000Z.zip", 2
		return d
	}
	for _, c := range []struct {
		name    string
		o       *session.Observed
		d       *session.Session
		state   session.State
		pending session.Pending
		user    string
	}{
		{"ready", obs("ab000001", all6, 1, true), dur(session.StateSleeping), session.StateRunning, session.PendingNone, "fs@x"},
		{"scaled down", obs("ab000002", all6, 0, false), dur(session.StateRunning), session.StateSleeping, session.PendingNone, "fs@x"},
		{"coming up", obs("ab000003", all6, 1, false), dur(session.StateRunning), session.StateWaking, session.PendingReady, "fs@x"},
		{"created", obs("ab000004", all6, 1, false), dur(session.StateCreating), session.StateCreating, session.PendingReady, "fs@x"},
		{"no deployment, asleep", obs("ab000005", []session.ObjectKind{session.ObjectPVC}, 0, false), dur(session.StateSleeping), session.StateSleeping, session.PendingApply, "fs@x"},
		{"no deployment, running", obs("ab000006", []session.ObjectKind{session.ObjectPVC}, 0, false), dur(session.StateRunning), session.StateWaking, session.PendingApply, "fs@x"},
		{"deleting with a volume", obs("ab000007", all6, 0, false), dur(session.StateDeleting), session.StateDeleting, session.PendingBackup, "fs@x"},
		{"deleting without", obs("ab000008", []session.ObjectKind{session.ObjectService}, 0, false), dur(session.StateDeleting), session.StateDeleting, session.PendingRemoval, "fs@x"},
		{"failed", obs("ab000009", all6, 0, false), dur(session.StateFailed), session.StateFailed, session.PendingNone, "fs@x"},
		{"adopted", obs("ab000010", all6, 1, true), nil, session.StateRunning, session.PendingNone, "k8s@x"},
		{"adopted over a tombstone", obs("ab000011", all6, 1, false), dur(session.StateDeleted), session.StateCreating, session.PendingReady, "fs@x"},
		// a volume being filled from a backup: the restore goes on, the workspace stays down
		{"restoring", obs("ab000012", all6, 0, false), restoring(session.StateCreating), session.StateCreating, session.PendingRestore, "fs@x"},
		{"restoring asleep", obs("ab000013", all6, 0, false), restoring(session.StateSleeping), session.StateSleeping, session.PendingRestore, "fs@x"},
		{"restoring, incomplete", obs("ab000014", []session.ObjectKind{session.ObjectPVC}, 0, false), restoring(session.StateCreating), session.StateCreating, session.PendingApply, "fs@x"},
		{"restore failed", obs("ab000015", all6, 0, false), restoring(session.StateFailed), session.StateFailed, session.PendingNone, "fs@x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			if c.d != nil {
				c.d.ID = c.o.ID
			}
			r.Cluster.Add(c.o)
			dry, err := r.svc.Rebuild(r.ctx, session.Rebuilding{Observed: c.o, Durable: c.d, DryRun: true})
			if err != nil || r.Store.Len() != 0 || len(r.Cluster.Calls()) != 0 {
				t.Fatalf("dry run: %v, %d records, calls %v", err, r.Store.Len(), r.Cluster.Calls())
			}
			s, err := r.svc.Rebuild(r.ctx, session.Rebuilding{Observed: c.o, Durable: c.d, ExpiresNotBefore: r.Clock.Now().Add(48 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			stored, _ := r.Store.Get(r.ctx, c.o.ID)
			if s.State != c.state || s.Pending != c.pending || s.UserID != c.user || stored.State != c.state || dry.State != c.state {
				t.Fatalf("restored %s/%q by %s (stored %s), want %s/%q by %s", s.State, s.Pending, s.UserID, stored.State, c.state, c.pending, c.user)
			}
			if c.d != nil && c.d.RestoreFrom != "" && (s.RestoreFrom != c.d.RestoreFrom || s.Attempt != c.d.Attempt) {
				t.Fatalf("a restoring session lost its restore: %+v", s)
			}
			if c.d == nil && !s.ExpiresAt.Equal(r.Clock.Now().Add(48*time.Hour)) {
				t.Fatalf("adopted expiring at %v", s.ExpiresAt)
			}
			if _, err := r.svc.Rebuild(r.ctx, session.Rebuilding{Observed: c.o, Durable: c.d}); !errors.Is(err, session.ErrConflict) {
				t.Fatalf("a second restore: %v", err)
			}
		})
	}
}

func TestRebuildRefusesWhatItCannotDecide(t *testing.T) {
	r := newRig(t)
	o := &session.Observed{ID: "ab000001", Kinds: []session.ObjectKind{session.ObjectPVC}}
	if _, err := r.svc.Rebuild(r.ctx, session.Rebuilding{Observed: o}); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("incomplete orphan: %v", err)
	}
	o.Kinds, o.Complete = session.WorkspaceKinds, true
	release := r.Store.HoldLock(o.ID)
	if _, err := r.svc.Rebuild(r.ctx, session.Rebuilding{Observed: o}); !errors.Is(err, session.ErrBusy) {
		t.Fatalf("locked: %v", err)
	}
	release()
	r.Store.Fail("Reserve", errors.New("redis down"))
	if _, err := r.svc.Rebuild(r.ctx, session.Rebuilding{Observed: o}); err == nil {
		t.Fatal("a failed write was not reported")
	}
}
