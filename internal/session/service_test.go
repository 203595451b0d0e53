package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

var sessionEpoch = sessiontest.Epoch

// rig is the real Service on the core's fakes.
type rig struct {
	*sessiontest.Fakes
	t   *testing.T
	svc *session.Service
	ctx context.Context
}

func newRig(t *testing.T) *rig {
	t.Helper()
	f := sessiontest.New()
	return &rig{Fakes: f, t: t, svc: f.Service(session.Options{Domain: "ws.test"}), ctx: context.Background()}
}

func (r *rig) create(req session.CreateRequest) *session.Session {
	r.t.Helper()
	if req.UserID == "" {
		req.UserID = "u@example.com"
	}
	s, err := r.svc.Create(r.ctx, req)
	if err != nil {
		r.t.Fatalf("create: %v", err)
	}
	return s
}

func (r *rig) get(id string) *session.Session {
	r.t.Helper()
	s, err := r.svc.Get(r.ctx, id)
	if err != nil {
		r.t.Fatalf("get %s: %v", id, err)
	}
	return s
}

// ready makes the workspace's pod ready and lets a Get see it.
func (r *rig) ready(id string) *session.Session {
	r.t.Helper()
	r.Cluster.SetReady(id, true, "")
	return r.get(id)
}

// must fails the test on an error: must(t)(r.svc.Sleep(ctx, id)).
func must(t *testing.T) func(*session.Session, error) *session.Session {
	return func(s *session.Session, err error) *session.Session {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// in brings a new session to state st through the Service's own operations.
func (r *rig) in(st session.State) *session.Session {
	r.t.Helper()
	s := r.create(session.CreateRequest{})
	id := s.ID
	switch st {
	case session.StateCreating:
		return r.get(id)
	case session.StateRunning:
		return r.ready(id)
	case session.StateSleeping:
		r.ready(id)
		return must(r.t)(r.svc.Sleep(r.ctx, id))
	case session.StateWaking:
		r.ready(id)
		must(r.t)(r.svc.Sleep(r.ctx, id))
		return must(r.t)(r.svc.Wake(r.ctx, id))
	case session.StateDeleting:
		r.ready(id)
		return must(r.t)(r.svc.Delete(r.ctx, id, session.DeleteOptions{}))
	case session.StateDeleted:
		r.ready(id)
		return must(r.t)(r.svc.Delete(r.ctx, id, session.DeleteOptions{SkipBackup: true}))
	case session.StateFailed:
		r.ready(id)
		d := must(r.t)(r.svc.Delete(r.ctx, id, session.DeleteOptions{}))
		r.Cluster.FinishBackup(id, d.Attempt, session.BackupFailed, "zip: unreadable file")
		return r.get(id)
	}
	r.t.Fatalf("no way to state %s", st)
	return nil
}

// Every state × every operation: the state after it, or the error kind.
func TestStateMachine(t *testing.T) {
	type op struct {
		name string
		do   func(r *rig, id string) (*session.Session, error)
	}
	ops := map[string]op{
		"get":   {"get", func(r *rig, id string) (*session.Session, error) { return r.svc.Get(r.ctx, id) }},
		"sleep": {"sleep", func(r *rig, id string) (*session.Session, error) { return r.svc.Sleep(r.ctx, id) }},
		"wake":  {"wake", func(r *rig, id string) (*session.Session, error) { return r.svc.Wake(r.ctx, id) }},
		"touch": {"touch", func(r *rig, id string) (*session.Session, error) { return r.svc.Touch(r.ctx, id) }},
		"delete": {"delete", func(r *rig, id string) (*session.Session, error) {
			return r.svc.Delete(r.ctx, id, session.DeleteOptions{})
		}},
		"delete skip_backup": {"delete skip_backup", func(r *rig, id string) (*session.Session, error) {
			return r.svc.Delete(r.ctx, id, session.DeleteOptions{SkipBackup: true})
		}},
		"update": {"update", func(r *rig, id string) (*session.Session, error) {
			cpu := "500m"
			return r.svc.Update(r.ctx, id, session.UpdateRequest{CPU: &cpu})
		}},
		"sleep if idle": {"sleep if idle", func(r *rig, id string) (*session.Session, error) {
			if _, err := r.svc.SleepIfIdle(r.ctx, id, r.Clock.Now().Add(time.Hour), session.SleepIdle); err != nil {
				return nil, err
			}
			return r.Store.Get(r.ctx, id)
		}},
	}
	const (
		creating = session.StateCreating
		running  = session.StateRunning
		sleeping = session.StateSleeping
		waking   = session.StateWaking
		deleting = session.StateDeleting
		deleted  = session.StateDeleted
		failed   = session.StateFailed
		conflict = session.State("409")
	)
	want := map[session.State]map[string]session.State{
		creating: {"get": creating, "sleep": sleeping, "wake": creating, "touch": creating, "delete": deleting,
			"delete skip_backup": deleted, "update": creating, "sleep if idle": creating},
		running: {"get": running, "sleep": sleeping, "wake": running, "touch": running, "delete": deleting,
			"delete skip_backup": deleted, "update": running, "sleep if idle": sleeping},
		sleeping: {"get": sleeping, "sleep": sleeping, "wake": waking, "touch": sleeping, "delete": deleting,
			"delete skip_backup": deleted, "update": sleeping, "sleep if idle": sleeping},
		waking: {"get": waking, "sleep": sleeping, "wake": waking, "touch": waking, "delete": deleting,
			"delete skip_backup": deleted, "update": waking, "sleep if idle": waking},
		deleting: {"get": deleting, "sleep": conflict, "wake": conflict, "touch": conflict, "delete": deleting,
			"delete skip_backup": deleting, "update": conflict, "sleep if idle": deleting},
		deleted: {"get": deleted, "sleep": conflict, "wake": conflict, "touch": conflict, "delete": deleted,
			"delete skip_backup": deleted, "update": conflict, "sleep if idle": deleted},
		failed: {"get": failed, "sleep": sleeping, "wake": waking, "touch": failed, "delete": deleting,
			"delete skip_backup": deleted, "update": failed, "sleep if idle": failed},
	}
	for _, from := range session.States {
		for name, o := range ops {
			t.Run(string(from)+"/"+name, func(t *testing.T) {
				r := newRig(t)
				s := r.in(from)
				if s.State != from {
					t.Fatalf("set up %s, got %s", from, s.State)
				}
				got, err := o.do(r, s.ID)
				w := want[from][o.name]
				if w == conflict {
					if !errors.Is(err, session.ErrConflict) {
						t.Fatalf("%s on %s: %v, want a conflict", name, from, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s on %s: %v", name, from, err)
				}
				if got.State != w {
					t.Fatalf("%s on %s: %s, want %s", name, from, got.State, w)
				}
				if stored, _ := r.Store.Get(r.ctx, s.ID); stored.State != got.State {
					t.Fatalf("answered %s, stored %s", got.State, stored.State)
				}
			})
		}
	}
}

func TestCreateRunsOnceThePodIsReady(t *testing.T) {
	r := newRig(t)
	s := r.create(session.CreateRequest{Labels: map[string]string{"team": "a"}})
	if s.State != session.StateCreating || s.Pending != session.PendingReady || s.Password == "" ||
		s.WorkspaceURL != "https://vs-code-"+s.ID+".ws.test" || s.Image == "" || s.Storage != "5Gi" {
		t.Fatalf("created %+v", s)
	}
	ws, ok := r.Cluster.Workspace(s.ID)
	if !ok || ws.Replicas != 1 || !ws.Activator || ws.Labels["team"] != "a" {
		t.Fatalf("applied %+v", ws)
	}
	if pw, _ := r.Cluster.Password(r.ctx, s.ID); pw != s.Password {
		t.Fatal("the password given is not the one applied")
	}
	if stored, _ := r.Store.Get(r.ctx, s.ID); stored.Password != "" {
		t.Fatal("the password was stored")
	}
	r.Cluster.SetReady(s.ID, false, "ImagePullBackOff")
	if g := r.get(s.ID); g.State != session.StateCreating || g.Reason != "ImagePullBackOff" || g.Password != "" {
		t.Fatalf("waiting: %+v", g)
	}
	r.Clock.Add(3 * time.Minute)
	g := r.ready(s.ID)
	if g.State != session.StateRunning || g.Pending != session.PendingNone || g.Reason != "" || !g.LastActivity.Equal(r.Clock.Now()) {
		t.Fatalf("ready: %+v", g)
	}
	if ws, _ := r.Cluster.Workspace(s.ID); ws.Activator {
		t.Fatal("a running workspace is still routed to the activator")
	}
	if got := r.Recorder.Types(s.ID); strings.Join(got, ",") != "created,ready" {
		t.Fatalf("events %v", got)
	}
}

func TestCreateAsleep(t *testing.T) {
	r := newRig(t)
	s := r.create(session.CreateRequest{State: session.StateSleeping})
	if s.State != session.StateSleeping || s.Pending != session.PendingNone || r.Cluster.Replicas(s.ID) != 0 {
		t.Fatalf("created asleep: %+v, %d replicas", s, r.Cluster.Replicas(s.ID))
	}
}

func TestCreateOptions(t *testing.T) {
	r := newRig(t)
	never, day, off, no := session.Duration(0), session.Duration(72*time.Hour), session.Duration(0), false
	s := r.create(session.CreateRequest{Image: " img:1 ", CPU: "1", Memory: "1Gi", Storage: "10Gi", TTL: &day,
		IdleTimeout: &off, BackupOnDelete: &no})
	if s.Image != "img:1" || s.CPU != "1" || s.Memory != "1Gi" || s.Storage != "10Gi" || s.IdleTimeout != 0 ||
		s.BackupOnDelete || !s.ExpiresAt.Equal(s.CreatedAt.Add(72*time.Hour)) {
		t.Fatalf("created %+v", s)
	}
	if s := r.create(session.CreateRequest{TTL: &never}); !s.ExpiresAt.IsZero() {
		t.Fatalf("ttl 0 expires at %v", s.ExpiresAt)
	}
	if s := r.create(session.CreateRequest{}); !s.ExpiresAt.Equal(s.CreatedAt.Add(24 * time.Hour)) {
		t.Fatalf("default ttl: expires at %v", s.ExpiresAt)
	}
}

func TestApplyStepResumesACreateThatFailed(t *testing.T) {
	r := newRig(t)
	r.Cluster.Fail("Apply", errors.New("apiserver down"))
	if _, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u"}); err == nil {
		t.Fatal("create succeeded with the cluster down")
	}
	r.Cluster.Fail("Apply", nil)
	ls, err := r.svc.List(r.ctx, session.ListOptions{})
	if err != nil || len(ls.Sessions) != 1 || ls.Sessions[0].Pending != session.PendingApply {
		t.Fatalf("after the failed create: %+v %v", ls, err)
	}
	id := ls.Sessions[0].ID
	if g := r.get(id); g.Pending != session.PendingReady {
		t.Fatalf("the next touch did not apply: %+v", g)
	}
	if _, ok := r.Cluster.Workspace(id); !ok {
		t.Fatal("nothing applied")
	}
	// a transition finishes the create first too
	r.Cluster.Fail("Apply", errors.New("apiserver down"))
	_, err = r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", State: session.StateSleeping})
	r.Cluster.Fail("Apply", nil)
	if err == nil {
		t.Fatal("create succeeded with the cluster down")
	}
	ls, _ = r.svc.List(r.ctx, session.ListOptions{State: session.StateSleeping})
	asleep := ls.Sessions[0]
	s := must(t)(r.svc.Sleep(r.ctx, asleep.ID))
	if s.Pending != session.PendingNone || s.State != session.StateSleeping {
		t.Fatalf("sleep after an interrupted create: %+v", s)
	}
	// and a transition stops when the apply fails again
	r.Cluster.Fail("Apply", errors.New("apiserver down"))
	_, err = r.svc.Create(r.ctx, session.CreateRequest{UserID: "u2"})
	if err == nil {
		t.Fatal("create succeeded")
	}
	ls, _ = r.svc.List(r.ctx, session.ListOptions{UserID: "u2"})
	if _, err := r.svc.Wake(r.ctx, ls.Sessions[0].ID); err == nil {
		t.Fatal("wake succeeded with the apply failing")
	}
	if _, err := r.svc.Get(r.ctx, ls.Sessions[0].ID); err == nil {
		t.Fatal("get succeeded with the apply failing")
	}
}

func TestReadyStepReappliesALostDeployment(t *testing.T) {
	r := newRig(t)
	s := r.create(session.CreateRequest{})
	r.Cluster.Remove(s.ID, session.ObjectDeployment)
	r.Cluster.SetAutoReady(true)
	if g := r.get(s.ID); g.State != session.StateRunning {
		t.Fatalf("after the lost Deployment: %+v", g)
	}
}

func TestReadyStepWaitsWhenTheRouteFails(t *testing.T) {
	r := newRig(t)
	s := r.create(session.CreateRequest{})
	r.Cluster.Fail("Route", errors.New("ingress webhook down"))
	r.Cluster.SetReady(s.ID, true, "")
	if _, err := r.svc.Get(r.ctx, s.ID); err == nil {
		t.Fatal("a failed route was not reported")
	}
	if st, _ := r.Store.Get(r.ctx, s.ID); st.State != session.StateCreating {
		t.Fatalf("running before its host was routed: %s", st.State)
	}
	r.Cluster.Fail("Route", nil)
	if g := r.get(s.ID); g.State != session.StateRunning {
		t.Fatalf("after the route came back: %s", g.State)
	}
	r.Cluster.Fail("Readiness", errors.New("apiserver down"))
	r2 := r.create(session.CreateRequest{})
	if _, err := r.svc.Get(r.ctx, r2.ID); err == nil {
		t.Fatal("a failed observation was not reported")
	}
}

func TestSleepAndWake(t *testing.T) {
	r := newRig(t)
	s := r.in(session.StateRunning)
	sl := must(t)(r.svc.Sleep(r.ctx, s.ID))
	if sl.State != session.StateSleeping || r.Cluster.Replicas(s.ID) != 0 {
		t.Fatalf("slept: %+v", sl)
	}
	if ws, _ := r.Cluster.Workspace(s.ID); !ws.Activator {
		t.Fatal("a sleeping workspace is not routed to the activator")
	}
	r.Clock.Add(time.Hour)
	wk := must(t)(r.svc.Wake(r.ctx, s.ID))
	if wk.State != session.StateWaking || wk.Pending != session.PendingReady || r.Cluster.Replicas(s.ID) != 1 ||
		!wk.LastActivity.Equal(r.Clock.Now()) {
		t.Fatalf("woken: %+v", wk)
	}
	if g := r.ready(s.ID); g.State != session.StateRunning {
		t.Fatalf("after wake: %+v", g)
	}
	if got := strings.Join(r.Recorder.Types(s.ID), ","); got != "created,ready,slept,wake_started,woke" {
		t.Fatalf("events %s", got)
	}
	// a route that fails on sleep is logged, not an error: the workspace sleeps either way
	r.Cluster.Fail("Route", errors.New("ingress webhook down"))
	if sl := must(t)(r.svc.Sleep(r.ctx, s.ID)); sl.State != session.StateSleeping {
		t.Fatalf("sleep with a failing route: %s", sl.State)
	}
}

func TestSleepIfIdle(t *testing.T) {
	r := newRig(t)
	s := r.in(session.StateRunning)
	now := r.Clock.Now()
	for _, c := range []struct {
		at   time.Time
		want bool
	}{{now.Add(14 * time.Minute), false}, {now.Add(15 * time.Minute), true}} {
		slept, err := r.svc.SleepIfIdle(r.ctx, s.ID, c.at, session.SleepIdle)
		if err != nil || slept != c.want {
			t.Fatalf("at +%s: slept %v %v, want %v", c.at.Sub(now), slept, err, c.want)
		}
	}
	// activity recorded meanwhile keeps it awake; no idle timeout never sleeps
	s2 := r.in(session.StateRunning)
	_ = r.Store.Touch(r.ctx, s2.ID, now.Add(10*time.Minute))
	if slept, _ := r.svc.SleepIfIdle(r.ctx, s2.ID, now.Add(20*time.Minute), session.SleepIdle); slept {
		t.Fatal("slept despite recent activity")
	}
	off := session.Duration(0)
	must(t)(r.svc.Update(r.ctx, s2.ID, session.UpdateRequest{IdleTimeout: &off}))
	if slept, _ := r.svc.SleepIfIdle(r.ctx, s2.ID, now.Add(48*time.Hour), session.SleepIdle); slept {
		t.Fatal("slept with idle_timeout 0")
	}
}

func TestWakeReappliesAMissingWorkspace(t *testing.T) {
	r := newRig(t)
	s := r.in(session.StateSleeping)
	r.Cluster.Remove(s.ID, session.ObjectDeployment)
	w := must(t)(r.svc.Wake(r.ctx, s.ID))
	if w.State != session.StateWaking || r.Cluster.Replicas(s.ID) != 1 {
		t.Fatalf("woken: %+v, %d replicas", w, r.Cluster.Replicas(s.ID))
	}
	// a complete workspace whose scale fails is an error, not a re-apply
	r.Cluster.Fail("Scale", errors.New("conflict"))
	if _, err := r.svc.Sleep(r.ctx, s.ID); err == nil {
		t.Fatal("a failed scale was not reported")
	}
}

func TestUpdate(t *testing.T) {
	r := newRig(t)
	s := r.in(session.StateRunning)
	img, storage, mem, idle, ttl, yes := " img:2 ", "10Gi", "1Gi", session.Duration(time.Hour), session.Duration(48*time.Hour), false
	u := must(t)(r.svc.Update(r.ctx, s.ID, session.UpdateRequest{Image: &img, Storage: &storage, Memory: &mem,
		IdleTimeout: &idle, TTL: &ttl, BackupOnDelete: &yes, Labels: map[string]string{"k": "v"}}))
	if u.Image != "img:2" || u.Storage != "10Gi" || u.Memory != "1Gi" || u.IdleTimeout != idle || u.BackupOnDelete ||
		u.Labels["k"] != "v" || !u.ExpiresAt.Equal(u.CreatedAt.Add(48*time.Hour)) || u.Pending != session.PendingReady {
		t.Fatalf("updated %+v", u)
	}
	ws, _ := r.Cluster.Workspace(s.ID)
	if ws.Image != "img:2" || ws.Storage != "10Gi" || ws.Labels["k"] != "v" {
		t.Fatalf("applied %+v", ws)
	}
	if g := r.ready(s.ID); g.State != session.StateRunning || g.Pending != session.PendingNone {
		t.Fatalf("rolled out: %+v", g)
	}
	// nothing the cluster holds changed: no apply
	n := len(r.Cluster.Applied())
	never := session.Duration(0)
	must(t)(r.svc.Update(r.ctx, s.ID, session.UpdateRequest{TTL: &never}))
	if len(r.Cluster.Applied()) != n {
		t.Fatal("a ttl change applied the workspace")
	}
	small := "1Gi"
	_, err := r.svc.Update(r.ctx, s.ID, session.UpdateRequest{Storage: &small})
	if session.FieldOf(err) != "storage" || !strings.Contains(err.Error(), "cannot shrink") {
		t.Fatalf("shrink: %v", err)
	}
	r.Cluster.Fail("Apply", errors.New("apiserver down"))
	other := "img:3"
	if _, err := r.svc.Update(r.ctx, s.ID, session.UpdateRequest{Image: &other}); err == nil {
		t.Fatal("a failed apply was not reported")
	}
}

// deleting brings a running session to the start of its backup.
func (r *rig) deleting() *session.Session {
	r.t.Helper()
	s := r.in(session.StateRunning)
	d := must(r.t)(r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{}))
	if d.State != session.StateDeleting || d.Pending != session.PendingBackup || d.Attempt != 1 {
		r.t.Fatalf("delete: %+v", d)
	}
	return d
}

func TestDeleteBacksUpThenRemoves(t *testing.T) {
	r := newRig(t)
	d := r.deleting()
	if d.BackupLocation == "" || !strings.Contains(strings.Join(r.Cluster.Calls(), ","), "backup "+d.ID+" 1") {
		t.Fatalf("backup not started: %+v %v", d, r.Cluster.Calls())
	}
	if g := r.get(d.ID); g.State != session.StateDeleting {
		t.Fatalf("while the backup runs: %+v", g)
	}
	r.Cluster.FinishBackup(d.ID, 1, session.BackupSucceeded, "")
	g := r.get(d.ID)
	if g.State != session.StateDeleted || g.BackupLocation == "" {
		t.Fatalf("after the backup: %+v", g)
	}
	if _, ok := r.Cluster.Workspace(d.ID); ok {
		t.Fatal("objects left behind")
	}
	if got := strings.Join(r.Recorder.Types(d.ID), ","); got != "created,ready,delete_started,backup_started,backup_done,deleted" {
		t.Fatalf("events %s", got)
	}
	// a tombstone: still readable, listed only under deleted
	if ls, _ := r.svc.List(r.ctx, session.ListOptions{}); len(ls.Sessions) != 0 {
		t.Fatalf("tombstone listed: %+v", ls.Sessions)
	}
	if ls, _ := r.svc.List(r.ctx, session.ListOptions{State: session.StateDeleted}); len(ls.Sessions) != 1 {
		t.Fatalf("tombstone not listed under deleted: %+v", ls.Sessions)
	}
}

func TestBackupWaitsForThePodToGo(t *testing.T) {
	r := newRig(t)
	s := r.in(session.StateRunning)
	r.Cluster.SetPods(s.ID, 1) // scaled down, but the pod still terminates
	// ... and the Deployment scaled back up out of band is scaled away again
	d := must(t)(r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{}))
	if d.BackupLocation != "" {
		t.Fatal("the backup started while a pod still ran")
	}
	_ = r.Cluster.Scale(r.ctx, s.ID, 1) // its pod (still terminating) stays when scaled away
	if g := r.get(s.ID); g.BackupLocation != "" || r.Cluster.Replicas(s.ID) != 0 {
		t.Fatalf("backup started with a pod up: %+v", g)
	}
	r.Cluster.SetPods(s.ID, 0)
	if g := r.get(s.ID); g.BackupLocation == "" {
		t.Fatalf("backup not started once the pod went: %+v", g)
	}
}

func TestBackupFailuresKeepTheVolumeThenAskForSkipBackup(t *testing.T) {
	r := newRig(t)
	d := r.deleting()
	for attempt := 1; attempt <= 3; attempt++ {
		r.Cluster.FinishBackup(d.ID, attempt, session.BackupFailed, "zip: unreadable file")
		f := r.get(d.ID)
		if f.State != session.StateFailed || f.BackupFailures != attempt || !strings.Contains(f.Reason, "unreadable") {
			t.Fatalf("attempt %d: %+v", attempt, f)
		}
		if _, ok := r.Cluster.Workspace(d.ID); !ok {
			t.Fatal("the volume was not kept")
		}
		if attempt < 3 {
			if again := must(t)(r.svc.Delete(r.ctx, d.ID, session.DeleteOptions{})); again.Attempt != attempt+1 {
				t.Fatalf("retry: attempt %d", again.Attempt)
			}
		}
	}
	_, err := r.svc.Delete(r.ctx, d.ID, session.DeleteOptions{})
	if !errors.Is(err, session.ErrConflict) || !strings.Contains(err.Error(), "skip_backup") {
		t.Fatalf("fourth delete: %v", err)
	}
	// a wake gives the user a chance to fix it: the count starts again
	w := must(t)(r.svc.Wake(r.ctx, d.ID))
	if w.BackupFailures != 0 {
		t.Fatalf("woken: %+v", w)
	}
	must(t)(r.svc.Sleep(r.ctx, d.ID))
	if g := must(t)(r.svc.Delete(r.ctx, d.ID, session.DeleteOptions{SkipBackup: true})); g.State != session.StateDeleted {
		t.Fatalf("skip_backup: %+v", g)
	}
}

func TestBackupOfAVolumeAlreadyGone(t *testing.T) {
	r := newRig(t)
	s := r.in(session.StateSleeping)
	r.Cluster.Remove(s.ID, session.ObjectPVC)
	d := must(t)(r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{}))
	if d.State != session.StateDeleted {
		t.Fatalf("delete without a volume: %+v", d)
	}
	if got := r.Recorder.Types(s.ID); got[len(got)-2] != "backup_skipped" {
		t.Fatalf("events %v", got)
	}
}

func TestBackupStepErrors(t *testing.T) {
	r := newRig(t)
	d := r.deleting()
	r.Cluster.Fail("BackupStatus", errors.New("apiserver down"))
	if _, err := r.svc.Get(r.ctx, d.ID); err == nil {
		t.Fatal("backup status error not reported")
	}
	r.Cluster.Fail("BackupStatus", nil)

	s := r.in(session.StateSleeping)
	r.Cluster.Fail("StartBackup", errors.New("quota"))
	if _, err := r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{}); err == nil {
		t.Fatal("start backup error not reported")
	}
	r.Cluster.Fail("StartBackup", nil)
	if g := r.get(s.ID); g.BackupLocation == "" {
		t.Fatalf("the next touch did not start the backup: %+v", g)
	}
}

func TestRemovalResumes(t *testing.T) {
	r := newRig(t)
	s := r.in(session.StateRunning)
	r.Cluster.Fail("DeleteWorkspace", errors.New("finalizer stuck"))
	if _, err := r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{SkipBackup: true}); err == nil {
		t.Fatal("a failed delete was not reported")
	}
	if st, _ := r.Store.Get(r.ctx, s.ID); st.State != session.StateDeleting || st.Pending != session.PendingRemoval {
		t.Fatalf("after a failed removal: %+v", st)
	}
	if _, err := r.svc.Get(r.ctx, s.ID); err == nil {
		t.Fatal("the removal error was not reported again")
	}
	r.Cluster.Fail("DeleteWorkspace", nil)
	if g := r.get(s.ID); g.State != session.StateDeleting {
		t.Fatalf("the removal was asked again: %+v", g)
	}
	if g := r.get(s.ID); g.State != session.StateDeleted {
		t.Fatalf("after the removal: %+v", g)
	}
	r.Cluster.Fail("Observe", errors.New("apiserver down"))
	s2 := r.in(session.StateSleeping)
	r.Cluster.Fail("DeleteWorkspace", errors.New("x"))
	_, _ = r.svc.Delete(r.ctx, s2.ID, session.DeleteOptions{SkipBackup: true})
	r.Cluster.Fail("DeleteWorkspace", nil)
	if _, err := r.svc.Get(r.ctx, s2.ID); err == nil {
		t.Fatal("an observation error was not reported")
	}
}

func TestLockBusy(t *testing.T) {
	r := newRig(t)
	s := r.create(session.CreateRequest{})
	r.Cluster.SetReady(s.ID, true, "")
	release := r.Store.HoldLock(s.ID)
	if _, err := r.svc.Sleep(r.ctx, s.ID); !errors.Is(err, session.ErrBusy) {
		t.Fatalf("sleep under another's lock: %v", err)
	}
	// Get reports the record as it is, without moving it
	if g := r.get(s.ID); g.State != session.StateCreating {
		t.Fatalf("get under another's lock: %+v", g)
	}
	release()
	if g := r.get(s.ID); g.State != session.StateRunning {
		t.Fatalf("get after: %+v", g)
	}
	if r.Store.Locked(s.ID) {
		t.Fatal("the Service kept the lock")
	}
}

func TestIdempotentCreate(t *testing.T) {
	r := newRig(t)
	a := r.create(session.CreateRequest{RequestID: "req-1"})
	b := r.create(session.CreateRequest{RequestID: "req-1"})
	if a.ID != b.ID || b.Password != a.Password {
		t.Fatalf("retried create: %s %s", a.ID, b.ID)
	}
	if ls, _ := r.svc.List(r.ctx, session.ListOptions{}); len(ls.Sessions) != 1 {
		t.Fatalf("%d sessions", len(ls.Sessions))
	}
	// the first attempt claimed an id and stopped before reserving it: the retry uses that id
	if _, err := r.Store.ClaimRequest(r.ctx, "req-2", "abandon1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if c := r.create(session.CreateRequest{RequestID: "req-2"}); c.ID != "abandon1" {
		t.Fatalf("retry of a cut-short create got %s", c.ID)
	}
	// ... unless something holds that id
	_, _ = r.Store.ClaimRequest(r.ctx, "req-3", "abandon2", time.Hour)
	release := r.Store.HoldLock("abandon2")
	defer release()
	if _, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", RequestID: "req-3"}); session.KindOf(err) != session.KindInternal {
		t.Fatalf("claimed id taken: %v", err)
	}
	r.Store.Fail("ClaimRequest", errors.New("redis down"))
	if _, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", RequestID: "req-4"}); err == nil {
		t.Fatal("claim error not reported")
	}
}

func TestValidation(t *testing.T) {
	r := newRig(t)
	bad := func(v string) *string { return &v }
	short, neg := session.Duration(30*time.Second), session.Duration(-time.Hour)
	s := r.in(session.StateRunning)
	for _, c := range []struct {
		name  string
		field string
		err   func() error
	}{
		{"no user", "user_id", func() error { _, err := r.svc.Create(r.ctx, session.CreateRequest{}); return err }},
		{"state", "state", func() error {
			_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", State: session.StateDeleted})
			return err
		}},
		{"request id", "request_id", func() error {
			_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", RequestID: "has space"})
			return err
		}},
		{"long request id", "request_id", func() error {
			_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", RequestID: strings.Repeat("k", 129)})
			return err
		}},
		{"image", "image", func() error {
			_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", Image: "a b"})
			return err
		}},
		{"storage", "storage", func() error {
			_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", Storage: "lots"})
			return err
		}},
		{"cpu", "cpu", func() error { _, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", CPU: "-1"}); return err }},
		{"memory", "memory", func() error {
			_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", Memory: "x"})
			return err
		}},
		{"idle timeout", "idle_timeout", func() error {
			_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", IdleTimeout: &short})
			return err
		}},
		{"ttl", "ttl", func() error {
			_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", TTL: &short})
			return err
		}},
		{"labels", "labels", func() error {
			_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", Labels: map[string]string{"hyperbola.dev/x": "1"}})
			return err
		}},
		{"update image", "image", func() error { _, err := r.svc.Update(r.ctx, s.ID, session.UpdateRequest{Image: bad("")}); return err }},
		{"update cpu", "cpu", func() error { _, err := r.svc.Update(r.ctx, s.ID, session.UpdateRequest{CPU: bad("0")}); return err }},
		{"update ttl", "ttl", func() error { _, err := r.svc.Update(r.ctx, s.ID, session.UpdateRequest{TTL: &neg}); return err }},
		{"update idle", "idle_timeout", func() error {
			_, err := r.svc.Update(r.ctx, s.ID, session.UpdateRequest{IdleTimeout: &neg})
			return err
		}},
		{"update labels", "labels", func() error {
			_, err := r.svc.Update(r.ctx, s.ID, session.UpdateRequest{Labels: map[string]string{"a b": "c"}})
			return err
		}},
		{"list user", "user_id", func() error { _, err := r.svc.List(r.ctx, session.ListOptions{UserID: "a\x00"}); return err }},
		{"list state", "status", func() error { _, err := r.svc.List(r.ctx, session.ListOptions{State: "asleep"}); return err }},
		{"list limit", "limit", func() error { _, err := r.svc.List(r.ctx, session.ListOptions{Limit: 1001}); return err }},
		{"list negative limit", "limit", func() error { _, err := r.svc.List(r.ctx, session.ListOptions{Limit: -1}); return err }},
		{"list cursor", "cursor", func() error { _, err := r.svc.List(r.ctx, session.ListOptions{Cursor: "not base64!"}); return err }},
		{"list long cursor", "cursor", func() error {
			_, err := r.svc.List(r.ctx, session.ListOptions{Cursor: strings.Repeat("A", 600)})
			return err
		}},
		{"list foreign cursor", "cursor", func() error { _, err := r.svc.List(r.ctx, session.ListOptions{Cursor: "Zm9v"}); return err }},
		{"get id", "uuid", func() error { _, err := r.svc.Get(r.ctx, "../x"); return err }},
		{"sleep id", "uuid", func() error { _, err := r.svc.Sleep(r.ctx, "A"); return err }},
		{"touch id", "uuid", func() error { _, err := r.svc.Touch(r.ctx, ""); return err }},
	} {
		err := c.err()
		if session.KindOf(err) != session.KindInvalid || session.FieldOf(err) != c.field {
			t.Errorf("%s: %v (field %q), want invalid %s", c.name, err, session.FieldOf(err), c.field)
		}
	}
	if _, err := r.svc.Get(r.ctx, "zzzzzzzz"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := r.svc.Touch(r.ctx, "zzzzzzzz"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("touch unknown id: %v", err)
	}
}

func TestListPages(t *testing.T) {
	r := newRig(t)
	var ids []string
	for i := range 5 {
		s := r.create(session.CreateRequest{UserID: []string{"a", "b"}[i%2]})
		ids = append(ids, s.ID)
		r.Clock.Add(time.Second)
	}
	var got []string
	cursor := ""
	for {
		page, err := r.svc.List(r.ctx, session.ListOptions{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Sessions {
			got = append(got, s.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("paged %v, want %v", got, ids)
	}
	if a, _ := r.svc.List(r.ctx, session.ListOptions{UserID: "a"}); len(a.Sessions) != 3 {
		t.Fatalf("user a: %d", len(a.Sessions))
	}
}

func TestTouch(t *testing.T) {
	r := newRig(t)
	s := r.in(session.StateSleeping)
	r.Clock.Add(time.Minute)
	g := must(t)(r.svc.Touch(r.ctx, s.ID))
	if !g.LastActivity.Equal(r.Clock.Now()) || g.State != session.StateSleeping {
		t.Fatalf("touched: %+v", g)
	}
	r.Store.Fail("Touch", errors.New("redis down"))
	if _, err := r.svc.Touch(r.ctx, s.ID); err == nil {
		t.Fatal("touch error not reported")
	}
}

func TestStoreAndRecorderFailures(t *testing.T) {
	r := newRig(t)
	s := r.in(session.StateRunning)
	r.Store.Fail("Put", errors.New("redis down"))
	for name, f := range map[string]func() error{
		"sleep":  func() error { _, err := r.svc.Sleep(r.ctx, s.ID); return err },
		"update": func() error { _, err := r.svc.Update(r.ctx, s.ID, session.UpdateRequest{}); return err },
		"delete": func() error { _, err := r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{}); return err },
		"create": func() error { _, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u"}); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: a failed write was not reported", name)
		}
	}
	r.Store.Fail("Put", nil)
	r.Store.Fail("Lock", session.Unavailable("redis", errors.New("down")))
	if _, err := r.svc.Wake(r.ctx, s.ID); !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("lock error: %v", err)
	}
	if _, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u"}); !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("create lock error: %v", err)
	}
	r.Store.Fail("Lock", nil)
	r.Store.Fail("Reserve", errors.New("redis down"))
	if _, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u"}); err == nil {
		t.Error("reserve error not reported")
	}
	r.Store.Fail("Reserve", nil)
	// a durable event that cannot be written is logged: the transition stands
	r.Recorder.Fail("Record", errors.New("firestore down"))
	if sl := must(t)(r.svc.Sleep(r.ctx, s.ID)); sl.State != session.StateSleeping {
		t.Fatalf("sleep with the recorder down: %+v", sl)
	}
}

func TestEventsCarryTheActor(t *testing.T) {
	r := newRig(t)
	s := r.create(session.CreateRequest{})
	must(t)(r.svc.Sleep(session.WithActor(r.ctx, "terraform"), s.ID))
	evs := r.Recorder.Events(s.ID)
	if evs[0].Actor != "api" || evs[1].Actor != "terraform" || evs[1].From != session.StateCreating || evs[1].Session.Password != "" {
		t.Fatalf("events %+v", evs)
	}
	if err := r.svc.Advance(r.ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if r.svc.Options().MaxBackupAttempts != 3 || r.svc.URL("abc") != "https://vs-code-abc.ws.test" {
		t.Fatalf("options %+v", r.svc.Options())
	}
}

// A scale to zero that lands behind the record's back (a request delivered just before its
// instance froze) never leaves a session stuck: one waiting for its pod scales up again, and
// waking one that says it runs brings its pod back.
func TestAScaleToZeroBehindTheRecordIsRepaired(t *testing.T) {
	r := newRig(t)
	w := r.in(session.StateWaking)
	if err := r.Cluster.Scale(r.ctx, w.ID, 0); err != nil {
		t.Fatal(err)
	}
	if g := r.get(w.ID); g.State != session.StateWaking || r.Cluster.Replicas(w.ID) != 1 {
		t.Fatalf("a waking session at 0 replicas: %+v, replicas %d", g, r.Cluster.Replicas(w.ID))
	}
	if g := r.ready(w.ID); g.State != session.StateRunning {
		t.Fatalf("after: %+v", g)
	}

	s := r.in(session.StateRunning)
	if err := r.Cluster.Scale(r.ctx, s.ID, 0); err != nil {
		t.Fatal(err)
	}
	wk := must(t)(r.svc.Wake(r.ctx, s.ID))
	if wk.State != session.StateWaking || r.Cluster.Replicas(s.ID) != 1 {
		t.Fatalf("waking a running session with no pod: %+v, replicas %d", wk, r.Cluster.Replicas(s.ID))
	}
	if g := r.ready(s.ID); g.State != session.StateRunning {
		t.Fatalf("after: %+v", g)
	}
	// a running session that does run: waking it changes nothing
	before := len(r.Cluster.Calls())
	if g := must(t)(r.svc.Wake(r.ctx, s.ID)); g.State != session.StateRunning || len(r.Cluster.Calls()) != before {
		t.Fatalf("waking a running session: %+v, calls %v", g, r.Cluster.Calls()[before:])
	}
}

// A delete waiting for a backup that cannot start is not stuck for good: a delete with
// skip_backup removes it now. One whose backup runs lets the backup finish.
func TestSkipBackupOnADeleteThatWaits(t *testing.T) {
	r := newRig(t)
	s := r.in(session.StateSleeping)
	r.Cluster.Fail("StartBackup", errors.New("persistentvolumeclaims \"hyperbola-backups\" not found"))
	if _, err := r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{}); err == nil {
		t.Fatal("a backup that cannot start was not reported")
	}
	if _, err := r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{}); err == nil {
		t.Fatal("a delete again without skip_backup should still wait for the backup")
	}
	d := must(t)(r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{SkipBackup: true}))
	if d.State != session.StateDeleted && d.Pending != session.PendingRemoval {
		t.Fatalf("delete with skip_backup on a waiting delete: %+v", d)
	}
	if g := r.get(s.ID); g.State != session.StateDeleted {
		t.Fatalf("after: %+v", g)
	}
	if types := strings.Join(r.Recorder.Types(s.ID), ","); !strings.Contains(types, "backup_skipped") {
		t.Fatalf("events %s", types)
	}
	r.Cluster.Fail("StartBackup", nil)

	running := r.deleting()
	g := must(t)(r.svc.Delete(r.ctx, running.ID, session.DeleteOptions{SkipBackup: true}))
	if g.State != session.StateDeleting || g.Pending != session.PendingBackup {
		t.Fatalf("skip_backup stopped a running backup: %+v", g)
	}
}

// Only a create's first apply says the volume is new (a warm volume may take its place): not
// a restore's, whose Job fills the volume, nor a later apply (wake, update, retry).
func TestOnlyACreateAsksForANewVolume(t *testing.T) {
	r := newRig(t)
	s := r.create(session.CreateRequest{UserID: "ann@example.com"})
	applied := r.Cluster.Applied()
	if len(applied) != 1 || !applied[0].NewVolume {
		t.Fatalf("create applied %+v, want one apply with NewVolume", applied)
	}
	big := "20Gi"
	must(t)(r.svc.Update(r.ctx, s.ID, session.UpdateRequest{Storage: &big}))
	if ws, _ := r.Cluster.Workspace(s.ID); ws.NewVolume {
		t.Fatal("an update asked for a new volume")
	}
	_, b := r.backedUp("ann@example.com", "")
	restored := r.create(session.CreateRequest{UserID: "ann@example.com", RestoreFrom: b.ID})
	if ws, _ := r.Cluster.Workspace(restored.ID); ws.NewVolume {
		t.Fatal("a restore asked for a new (warm) volume")
	}
}
