package reconcile

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

var (
	now  = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	old  = now.Add(-2 * time.Hour)
	all6 = session.WorkspaceKinds
)

func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

// observed is a session's objects as the cluster would report them.
func observed(id, user string, kinds []session.ObjectKind, replicas int32, ready bool, created time.Time) *session.Observed {
	return &session.Observed{
		ID: id, UserID: user, Kinds: slices.Clone(kinds), Complete: len(kinds) == 6,
		DesiredReplicas: replicas, ReadyReplicas: map[bool]int32{true: 1}[ready], Ready: ready,
		Created: created, IdleTimeout: 20 * time.Minute, Storage: "5Gi", Image: "img:observed",
		CPU: "250m", Memory: "256Mi", Labels: map[string]string{"team": "k8s"},
	}
}

// durable is a session as Firestore last saw it.
func durable(id, user string, st session.State) *session.Session {
	return &session.Session{
		ID: id, UserID: user, State: st, WorkspaceURL: "https://vs-code-" + id + ".example.test",
		Image: "img:durable", Storage: "10Gi", CPU: "500m", Memory: "1Gi", IdleTimeout: session.Duration(30 * time.Minute),
		BackupOnDelete: true, Labels: map[string]string{"team": "fs"}, CreatedAt: old, UpdatedAt: old.Add(time.Minute),
		LastActivity: old.Add(time.Minute), ExpiresAt: old.Add(24 * time.Hour), BackupLocation: "pvc://b/" + id + "/old.zip", Attempt: 2,
	}
}

// neverExpires makes s a session created with ttl 0.
func neverExpires(s *session.Session) *session.Session {
	s.ExpiresAt = time.Time{}
	return s
}

type fixture struct {
	cluster *sessiontest.Cluster
	store   *sessiontest.Store
	records *fakeRecords
}

func (f *fixture) run(t *testing.T, opts Options) *Report {
	t.Helper()
	deps := Deps{Cluster: f.cluster, Store: f.store, Now: clockAt(now)}
	if f.records != nil {
		deps.Records = f.records
	}
	rep, err := Reconcile(context.Background(), deps, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func ids(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func TestRebuildsLostRedisRecordsFromFirestoreAndTheCluster(t *testing.T) {
	f := &fixture{
		cluster: newCluster(
			observed("run00001", "", all6, 1, true, old),                                                              // ready → running
			observed("slp00001", "", all6, 0, false, old),                                                             // 0 replicas → sleeping
			observed("wak00001", "", all6, 1, false, old),                                                             // scaled up, not ready → waking
			observed("cre00001", "", all6, 1, false, old),                                                             // a create that was not ready → creating
			observed("del00001", "", all6, 0, false, old),                                                             // was deleting: go on, backup first
			observed("del00002", "", []session.ObjectKind{session.ObjectService}, 0, false, old),                      // deleting, volume gone
			observed("fai00001", "", all6, 0, false, old),                                                             // failed backup: stays failed
			observed("inc00001", "", []session.ObjectKind{session.ObjectPVC, session.ObjectDeployment}, 1, true, old), // incomplete: re-apply
		),
		store: newStore(),
		records: newFakeRecords(
			durable("run00001", "u1", session.StateSleeping),               // the cluster says otherwise: the cluster wins
			neverExpires(durable("slp00001", "u1", session.StateSleeping)), // ttl 0: stays so
			durable("wak00001", "u2", session.StateWaking),
			durable("cre00001", "u2", session.StateCreating),
			durable("del00001", "u3", session.StateDeleting),
			durable("del00002", "u3", session.StateDeleting),
			&session.Session{ID: "fai00001", UserID: "u3", State: session.StateFailed, Reason: "backup failed: zip", CreatedAt: old, UpdatedAt: old},
			durable("inc00001", "u4", session.StateRunning),
		),
	}
	rep := f.run(t, Options{})
	if got := ids(rep.Rebuilt); len(got) != 8 {
		t.Fatalf("rebuilt %v; report %+v", got, rep)
	}
	want := map[string]struct {
		state   session.State
		pending session.Pending
	}{
		"run00001": {session.StateRunning, session.PendingNone},
		"slp00001": {session.StateSleeping, session.PendingNone},
		"wak00001": {session.StateWaking, session.PendingReady},
		"cre00001": {session.StateCreating, session.PendingReady},
		"del00001": {session.StateDeleting, session.PendingBackup},
		"del00002": {session.StateDeleting, session.PendingRemoval},
		"fai00001": {session.StateFailed, session.PendingNone},
		"inc00001": {session.StateRunning, session.PendingApply},
	}
	for id, w := range want {
		s, err := f.store.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if s.State != w.state || s.Pending != w.pending {
			t.Errorf("%s: %s/%q, want %s/%q", id, s.State, s.Pending, w.state, w.pending)
		}
	}
	s, _ := f.store.Get(context.Background(), "run00001")
	// Firestore supplies what was asked for; the cluster only the state.
	if s.UserID != "u1" || s.Image != "img:durable" || s.Storage != "10Gi" || s.IdleTimeout.D() != 30*time.Minute ||
		!s.CreatedAt.Equal(old) || s.BackupLocation != "pvc://b/run00001/old.zip" || s.Labels["team"] != "fs" ||
		!s.LastActivity.Equal(now) || !s.UpdatedAt.Equal(now) || s.WorkspaceURL != "https://vs-code-run00001.example.test" {
		t.Errorf("rebuilt record: %+v", s)
	}
	if !s.ExpiresAt.Equal(old.Add(24 * time.Hour)) {
		t.Errorf("rebuilt record expires at %v, want Firestore's %v", s.ExpiresAt, old.Add(24*time.Hour))
	}
	if n, _ := f.store.Get(context.Background(), "slp00001"); !n.ExpiresAt.IsZero() {
		t.Errorf("a session that never expires was rebuilt expiring at %v", n.ExpiresAt)
	}
	if got := f.store.Touches("run00001"); len(got) != 1 || got[0] != now || len(f.store.Touches("slp00001")) != 0 {
		t.Errorf("activity: %v %v", got, f.store.Touches("slp00001"))
	}
	if d, _ := f.store.Get(context.Background(), "del00001"); d.Attempt != 2 {
		t.Errorf("deleting session keeps its attempt number: %d", d.Attempt)
	}
	if f, _ := f.store.Get(context.Background(), "fai00001"); f.Reason != "backup failed: zip" {
		t.Errorf("failed reason: %q", f.Reason)
	}
	// Only the volume-less deleting session lost objects, and never a volume.
	if calls := f.cluster.Calls(); !slices.Equal(calls, []string{"delete del00002 pvc=false"}) {
		t.Errorf("cluster calls: %v", calls)
	}
	evs := f.records.eventsOf("run00001")
	if len(evs) != 1 || evs[0].Type != "rebuilt" || evs[0].Actor != Actor || evs[0].From != session.StateSleeping || evs[0].To != session.StateRunning {
		t.Errorf("events: %+v", evs)
	}
	if f.records.flushed != 1 || rep.Observed != 8 || len(rep.Errors) != 0 {
		t.Errorf("flushed %d, observed %d, errors %+v", f.records.flushed, rep.Observed, rep.Errors)
	}

	// A second run finds every Redis record in place and changes nothing.
	rep = f.run(t, Options{})
	if rep.Changed() || len(rep.Errors) != 0 {
		t.Errorf("second run changed something: %+v", rep)
	}
}

func TestAdoptsCompleteOrphansAndRemovesIncompleteOnesAfterABackup(t *testing.T) {
	f := &fixture{
		cluster: newCluster(
			observed("ado00001", "owner@x", all6, 1, true, old),
			observed("ado00002", "", all6, 0, false, old),
			observed("yng00001", "owner@x", all6, 1, true, now.Add(-time.Minute)),                                       // too young
			observed("yng00002", "", []session.ObjectKind{session.ObjectService}, 0, false, now.Add(-time.Minute)),      // too young
			observed("rmv00001", "", []session.ObjectKind{session.ObjectService, session.ObjectIngress}, 0, false, old), // no volume
			observed("rmv00002", "owner@y", []session.ObjectKind{session.ObjectPVC, session.ObjectDeployment, session.ObjectSecret}, 1, true, old),
		),
		store:   newStore(),
		records: newFakeRecords(),
	}
	rep := f.run(t, Options{Domain: "example.test"})
	if got := ids(rep.Adopted); !slices.Equal(got, []string{"ado00001", "ado00002"}) {
		t.Errorf("adopted %v", got)
	}
	if got := ids(rep.Skipped); !slices.Equal(got, []string{"yng00001", "yng00002"}) {
		t.Errorf("skipped %v", got)
	}
	if got := ids(rep.Removed); !slices.Equal(got, []string{"rmv00001"}) {
		t.Errorf("removed %v", got)
	}
	if got := ids(rep.BackupsStarted); !slices.Equal(got, []string{"rmv00002"}) {
		t.Errorf("backups started %v", got)
	}
	a, err := f.store.Get(context.Background(), "ado00001")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != session.StateRunning || a.UserID != "owner@x" || a.Image != "img:observed" || a.IdleTimeout.D() != 20*time.Minute ||
		!a.CreatedAt.Equal(old) || a.WorkspaceURL != "https://vs-code-ado00001.example.test" || !a.BackupOnDelete ||
		!a.ExpiresAt.Equal(old.Add(24*time.Hour)) || a.Labels["team"] != "k8s" {
		t.Errorf("adopted record: %+v", a)
	}
	if b, _ := f.store.Get(context.Background(), "ado00002"); b.State != session.StateSleeping || b.UserID != "unknown" {
		t.Errorf("adopted asleep: %+v", b)
	}
	if evs := f.records.eventsOf("ado00001"); len(evs) != 1 || evs[0].Type != "adopted" || evs[0].To != session.StateRunning {
		t.Errorf("adoption events: %+v", evs)
	}
	// The volume-less set went; the one with a volume was scaled down and its backup started,
	// but nothing of it was deleted yet.
	calls := f.cluster.Calls()
	for _, want := range []string{"delete rmv00001 pvc=false", "scale rmv00002 0", "backup rmv00002 0"} {
		if !slices.Contains(calls, want) {
			t.Errorf("calls %v lack %q", calls, want)
		}
	}
	for _, c := range calls {
		if strings.HasPrefix(c, "delete rmv00002") {
			t.Errorf("rmv00002 deleted before its backup finished: %v", calls)
		}
	}
	if evs := f.records.eventsOf("rmv00001"); len(evs) != 1 || evs[0].Type != "orphan_removed" || evs[0].To != session.StateDeleted {
		t.Errorf("removal events: %+v", evs)
	}

	// While the backup runs: pending, nothing removed.
	rep = f.run(t, Options{})
	if got := ids(rep.BackupsPending); !slices.Equal(got, []string{"rmv00002"}) || len(rep.Removed) != 0 {
		t.Errorf("backup running: pending %v removed %v", got, ids(rep.Removed))
	}
	// Once it succeeded: the whole set goes, the volume with it.
	f.cluster.FinishBackup("rmv00002", OrphanBackupAttempt, session.BackupSucceeded, "")
	rep = f.run(t, Options{})
	if got := ids(rep.Removed); !slices.Equal(got, []string{"rmv00002"}) {
		t.Errorf("after the backup: removed %v; report %+v", got, rep)
	}
	if !slices.Contains(f.cluster.Calls(), "delete rmv00002 pvc=true") {
		t.Errorf("calls: %v", f.cluster.Calls())
	}
	evs := f.records.eventsOf("rmv00002")
	if len(evs) != 1 || !strings.HasPrefix(evs[0].Session.BackupLocation, "pvc://backups/rmv00002/rmv00002-") || evs[0].Session.UserID != "owner@y" {
		t.Errorf("removal record: %+v", evs)
	}
	// the orphan's archive is in the catalog, its owner's to list and restore
	if l, err := f.store.ListBackups(context.Background(), session.BackupListOptions{UserID: "owner@y"}); err != nil ||
		len(l.Backups) != 1 || l.Backups[0].Location != evs[0].Session.BackupLocation || l.Backups[0].SessionID != "rmv00002" {
		t.Errorf("the orphan's archive in the catalog: %+v, %v", l, err)
	}
}

func TestNeverRemovesAVolumeWhoseBackupFailed(t *testing.T) {
	f := &fixture{
		cluster: newCluster(observed("bkf00001", "", []session.ObjectKind{session.ObjectPVC}, 0, false, old)),
		store:   newStore(), records: newFakeRecords(),
	}
	f.run(t, Options{})
	f.cluster.FinishBackup("bkf00001", OrphanBackupAttempt, session.BackupFailed, "zip: no space left")
	for range 3 {
		rep := f.run(t, Options{})
		if len(rep.Errors) != 1 || rep.Errors[0].ID != "bkf00001" || !strings.Contains(rep.Errors[0].Detail, "no space left") || len(rep.Removed) != 0 {
			t.Errorf("failed backup: %+v", rep)
		}
	}
	for _, c := range f.cluster.Calls() {
		if strings.HasPrefix(c, "delete") {
			t.Errorf("something was deleted: %v", f.cluster.Calls())
		}
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	f := &fixture{
		cluster: newCluster(
			observed("run00001", "", all6, 1, true, old),
			observed("ado00001", "u", all6, 1, true, old),
			observed("rmv00001", "", []session.ObjectKind{session.ObjectPVC}, 0, false, old),
		),
		store:   newStore(),
		records: newFakeRecords(durable("run00001", "u1", session.StateRunning), durable("gon00001", "u1", session.StateRunning)),
	}
	rep := f.run(t, Options{DryRun: true})
	if !rep.DryRun || len(rep.Rebuilt) != 1 || len(rep.Adopted) != 1 || len(rep.Removed) != 1 || len(rep.Vanished) != 1 {
		t.Errorf("dry run report: %+v", rep)
	}
	if f.store.Len() != 0 || len(f.cluster.Calls()) != 0 || len(f.records.events) != 0 || f.records.flushed != 0 {
		t.Errorf("dry run changed: store %v calls %v events %v flushed %d", f.store.Len(), f.cluster.Calls(), f.records.events, f.records.flushed)
	}
}

// Without the durable records a session with no Redis record cannot be told from an orphan:
// nothing is adopted or removed.
func TestLeavesEverythingAloneWhenFirestoreCannotBeRead(t *testing.T) {
	f := &fixture{
		cluster: newCluster(observed("run00001", "", all6, 1, true, old), observed("rmv00001", "", []session.ObjectKind{session.ObjectPVC}, 0, false, old)),
		store:   newStore(), records: newFakeRecords(),
	}
	f.records.readErr = session.Unavailable("firestore", errors.New("down"))
	rep := f.run(t, Options{})
	if rep.Changed() || len(rep.Skipped) != 2 || len(rep.Errors) != 1 {
		t.Errorf("firestore down: %+v", rep)
	}
	if len(f.cluster.Calls()) != 0 || f.store.Len() != 0 {
		t.Errorf("changed: %v %v", f.cluster.Calls(), f.store.Len())
	}
}

func TestWithoutDurableRecordsAdoptsButNeverRemoves(t *testing.T) {
	f := &fixture{
		cluster: newCluster(observed("ado00001", "u", all6, 0, false, old), observed("inc00001", "", []session.ObjectKind{session.ObjectPVC}, 0, false, old)),
		store:   newStore(),
	}
	rep := f.run(t, Options{})
	if len(rep.Adopted) != 1 || len(rep.Removed) != 0 || len(rep.BackupsStarted) != 0 || len(rep.Skipped) != 1 {
		t.Errorf("no records: %+v", rep)
	}
}

// TestNoRecordsMeansNoDurableRecords: without Firestore (internal/stack passes no Records, never
// a nil *events.Recorder) reconcile still adopts what the cluster holds.
func TestNoRecordsMeansNoDurableRecords(t *testing.T) {
	rep, err := Reconcile(context.Background(), Deps{Cluster: newCluster(observed("ado00001", "u", all6, 0, false, old)),
		Store: newStore(), Now: clockAt(now)}, Options{})
	if err != nil || len(rep.Adopted) != 1 {
		t.Errorf("no records: %+v, %v", rep, err)
	}
}

func TestSkipsSessionsAnotherTransitionHolds(t *testing.T) {
	f := &fixture{
		cluster: newCluster(observed("run00001", "", all6, 1, true, old)),
		store:   newStore(), records: newFakeRecords(durable("run00001", "u", session.StateRunning)),
	}
	defer f.store.HoldLock("run00001")()
	rep := f.run(t, Options{})
	if len(rep.Rebuilt) != 0 || len(rep.Skipped) != 1 || !strings.Contains(rep.Skipped[0].Detail, "busy") {
		t.Errorf("busy: %+v", rep)
	}
}

func TestClosesRecordsOfVanishedSessionsAndBackfillsMissingOnes(t *testing.T) {
	f := &fixture{
		cluster: newCluster(observed("red00001", "u", all6, 1, true, old)),
		store:   newStore(),
		records: newFakeRecords(
			durable("gon00001", "u", session.StateRunning), // nothing left anywhere: closed
			durable("red00002", "u", session.StateRunning), // Redis holds it: the Service's business
		),
	}
	young := durable("yng00001", "u", session.StateCreating) // changed recently: left alone
	young.UpdatedAt = now.Add(-time.Minute)
	f.records.recs[young.ID] = young
	redis := durable("red00001", "u", session.StateRunning) // in Redis, unknown to Firestore
	_ = f.store.Seed(redis)
	_ = f.store.Seed(durable("red00002", "u", session.StateRunning))

	rep := f.run(t, Options{})
	if got := ids(rep.Vanished); !slices.Equal(got, []string{"gon00001"}) {
		t.Errorf("vanished %v", got)
	}
	if got := ids(rep.Backfilled); !slices.Equal(got, []string{"red00001"}) {
		t.Errorf("backfilled %v", got)
	}
	if evs := f.records.eventsOf("gon00001"); len(evs) != 1 || evs[0].Type != "vanished" || evs[0].To != session.StateDeleted || evs[0].From != session.StateRunning {
		t.Errorf("vanished event: %+v", evs)
	}
	if evs := f.records.eventsOf("red00001"); len(evs) != 1 || evs[0].Type != "backfilled" || evs[0].To != session.StateRunning {
		t.Errorf("backfill event: %+v", evs)
	}
	rep = f.run(t, Options{})
	if rep.Changed() {
		t.Errorf("second run changed something: %+v", rep)
	}
}

// Objects whose durable record says deleted, and deleted moments ago, are on their way out.
func TestLeavesRecentlyDeletedSessionsAlone(t *testing.T) {
	d := durable("del00001", "u", session.StateDeleted)
	d.UpdatedAt = now.Add(-time.Minute)
	f := &fixture{
		cluster: newCluster(observed("del00001", "", []session.ObjectKind{session.ObjectPVC}, 0, false, old)),
		store:   newStore(), records: newFakeRecords(d),
	}
	rep := f.run(t, Options{})
	if rep.Changed() || len(rep.Skipped) != 1 {
		t.Errorf("recently deleted: %+v", rep)
	}
}

// A session whose objects drifted from its record (a late call, a change by hand) is brought
// back to the record by the Service: sleeping with a replica scales down, running with none
// scales up. One with a step in flight is never taken for drift.
func TestRepairsDrift(t *testing.T) {
	asleep, up, busy, fine := durable("dft00001", "u", session.StateSleeping), durable("dft00002", "u", session.StateRunning),
		durable("dft00003", "u", session.StateSleeping), durable("dft00004", "u", session.StateRunning)
	busy.Pending, busy.PendingSince = session.PendingApply, now
	f := &fixture{
		cluster: newCluster(observed(asleep.ID, "u", all6, 1, true, old), observed(up.ID, "u", all6, 0, false, old),
			observed(busy.ID, "u", all6, 1, true, old), observed(fine.ID, "u", all6, 1, true, old)),
		store: newStore(),
	}
	for _, s := range []*session.Session{asleep, up, busy, fine} {
		if err := f.store.Seed(s); err != nil {
			t.Fatal(err)
		}
	}
	if rep := f.run(t, Options{DryRun: true}); !slices.Equal(ids(rep.Repaired), []string{asleep.ID, up.ID}) || f.cluster.Replicas(asleep.ID) != 1 {
		t.Fatalf("dry run: repaired %v, replicas %d", ids(rep.Repaired), f.cluster.Replicas(asleep.ID))
	}
	rep := f.run(t, Options{})
	if got := ids(rep.Repaired); !slices.Equal(got, []string{asleep.ID, up.ID}) {
		t.Fatalf("repaired %v", got)
	}
	if f.cluster.Replicas(asleep.ID) != 0 || f.cluster.Replicas(up.ID) != 1 || f.cluster.Replicas(fine.ID) != 1 {
		t.Fatalf("replicas after: %d %d %d", f.cluster.Replicas(asleep.ID), f.cluster.Replicas(up.ID), f.cluster.Replicas(fine.ID))
	}
	if g, _ := f.store.Get(context.Background(), asleep.ID); g.State != session.StateSleeping || g.Pending != session.PendingNone {
		t.Fatalf("the repaired sleeping session: %+v", g)
	}
}

// A session whose routes are not the routing's (a move from ingress to gateway routing) is
// applied again by the Service, whatever its state, once; one with a step in flight is left
// to that step.
func TestRepairsRoutes(t *testing.T) {
	up, asleep, busy := durable("rte00001", "u", session.StateRunning), durable("rte00002", "u", session.StateSleeping),
		durable("rte00003", "u", session.StateRunning)
	busy.Pending, busy.PendingSince = session.PendingReady, now
	moved := func(o *session.Observed) *session.Observed { o.Reroute = true; return o }
	f := &fixture{
		cluster: newCluster(moved(observed(up.ID, "u", all6, 1, true, old)), moved(observed(asleep.ID, "u", all6, 0, false, old)),
			moved(observed(busy.ID, "u", all6, 1, false, old))),
		store: newStore(),
	}
	for _, s := range []*session.Session{up, asleep, busy} {
		if err := f.store.Seed(s); err != nil {
			t.Fatal(err)
		}
	}
	f.cluster.SetAutoReady(true)
	rep := f.run(t, Options{})
	if got := ids(rep.Repaired); !slices.Equal(got, []string{up.ID, asleep.ID}) {
		t.Fatalf("repaired %v", got)
	}
	for _, s := range []*session.Session{up, asleep} {
		ws, ok := f.cluster.Workspace(s.ID)
		if !ok || ws.Activator != (s.State != session.StateRunning) {
			t.Errorf("%s applied as %+v", s.ID, ws)
		}
		if g, _ := f.store.Get(context.Background(), s.ID); g.State != s.State || g.Pending != session.PendingNone {
			t.Errorf("%s after its repair: %s/%s", s.ID, g.State, g.Pending)
		}
	}
	if f.cluster.Replicas(up.ID) != 1 || f.cluster.Replicas(asleep.ID) != 0 {
		t.Errorf("replicas after: %d %d", f.cluster.Replicas(up.ID), f.cluster.Replicas(asleep.ID))
	}
	if rep := f.run(t, Options{}); len(rep.Repaired) != 0 {
		t.Errorf("second run repaired %v", ids(rep.Repaired))
	}
}
