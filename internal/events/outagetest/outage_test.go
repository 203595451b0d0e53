package outagetest

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Firestore: true, Redis: true})
}

// cluster is a session.Cluster that always succeeds: the workspace is ready as soon as it has
// a replica. The test is about the records, not Kubernetes.
type cluster struct {
	mu       sync.Mutex
	replicas map[string]int32
}

func (c *cluster) Apply(_ context.Context, ws session.Workspace) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replicas[ws.ID] = ws.Replicas
	return nil
}

func (c *cluster) Scale(_ context.Context, id string, n int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replicas[id] = n
	return nil
}

func (c *cluster) Observe(_ context.Context, id string) (*session.Observed, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.replicas[id]
	if !ok {
		return &session.Observed{ID: id}, nil
	}
	return &session.Observed{ID: id, Kinds: slices.Clone(session.WorkspaceKinds),
		Complete: true, DesiredReplicas: n, ReadyReplicas: n, Ready: n > 0}, nil
}

func (c *cluster) Route(context.Context, session.Workspace) error { return nil }
func (c *cluster) Readiness(ctx context.Context, id string) (*session.Observed, error) {
	return c.Observe(ctx, id)
}
func (c *cluster) ObserveAll(context.Context) ([]*session.Observed, error) { return nil, nil }
func (c *cluster) Password(context.Context, string) (string, error)        { return "pw", nil }
func (c *cluster) StartBackup(context.Context, string, int) (*session.Backup, error) {
	return &session.Backup{Phase: session.BackupSucceeded, Location: "pvc://b/x.zip"}, nil
}
func (c *cluster) BackupStatus(context.Context, string, int) (*session.Backup, error) {
	return &session.Backup{Phase: session.BackupSucceeded, Location: "pvc://b/x.zip"}, nil
}
func (c *cluster) StartRestore(context.Context, string, int, string) (*session.Backup, error) {
	return &session.Backup{Phase: session.BackupSucceeded}, nil
}
func (c *cluster) RestoreStatus(context.Context, string, int) (*session.Backup, error) {
	return &session.Backup{Phase: session.BackupSucceeded}, nil
}
func (c *cluster) CheckArchive(context.Context, string) (*session.Archive, error) {
	return &session.Archive{}, nil
}
func (c *cluster) RemoveArchives(context.Context, string, []string) (*session.Backup, error) {
	return &session.Backup{Phase: session.BackupSucceeded}, nil
}
func (c *cluster) DeleteWorkspace(_ context.Context, id string, _ bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.replicas, id)
	return nil
}

// syncBuffer collects the Service's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Firestore dies in the middle of a run: the transitions still happen (Kubernetes and Redis
// change), each failed event is logged as an error by the Service and queued in Redis, the
// sessions are visibly pending, and once Firestore is back Flush writes every queued event so
// the durable records agree with Redis again. Nothing is lost silently.
func TestKillingFirestoreMidRunQueuesEveryEventAndFlushWritesThem(t *testing.T) {
	ctx := context.Background()
	project := env.FirestoreProject(t)
	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fs.Close() }()
	rdb, prefix := env.RedisFor(t)

	var mu sync.Mutex
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ropts := events.Options{Redis: rdb, Prefix: prefix, Attempts: 2, Backoff: 20 * time.Millisecond,
		AttemptTimeout: 30 * time.Second, Now: clock, Logger: logger} // a generous first attempt: the emulator's first transaction is slow
	rec := events.New(fs, ropts)
	st := store.New(rdb, prefix, store.Options{Now: clock})
	svc := session.NewService(&cluster{replicas: map[string]int32{}}, st, session.Options{
		Domain: "example.test", Now: clock, Logger: logger, Recorder: rec})

	// Before the outage: two sessions, created and ready, recorded.
	var ids []string
	for _, user := range []string{"alice", "bob"} {
		s, err := svc.Create(ctx, session.CreateRequest{UserID: user})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Get(ctx, s.ID); err != nil { // drives await-ready → running
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	for _, id := range ids {
		r, err := rec.Get(ctx, id)
		if err != nil || r.Session.State != session.StateRunning || r.Events != 2 {
			t.Fatalf("before the outage %s: %+v, %v", id, r, err)
		}
	}

	// Firestore dies. The recorder now fails over quickly (short attempts).
	env.Firestore.Kill()
	ropts.AttemptTimeout = 500 * time.Millisecond
	rec = events.New(fs, ropts)
	svc = session.NewService(&cluster{replicas: map[string]int32{ids[0]: 1, ids[1]: 1}}, st, session.Options{
		Domain: "example.test", Now: clock, Logger: logger, Recorder: rec})

	advance(2 * time.Hour)
	sweep := session.WithActor(ctx, "sweep")
	for _, id := range ids {
		if _, err := svc.Sleep(sweep, id); err != nil {
			t.Fatalf("Sleep(%s) with Firestore down: %v (the transition itself must not depend on Firestore)", id, err)
		}
	}
	advance(3 * time.Hour)
	if _, err := svc.Wake(ctx, ids[0]); err != nil { // wake_started
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, ids[0]); err != nil { // woke (ready at once): a status read drives it
		t.Fatal(err)
	}
	advance(time.Hour)
	if _, err := svc.Delete(ctx, ids[1], session.DeleteOptions{}); err != nil { // delete_started, backup_done, deleted
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}

	// Loud: every failed event is an error in the Service's log.
	failures := strings.Count(logs.String(), `level=ERROR msg="recording event"`)
	// Queued: every one of them is in Redis, counted against its session.
	info, err := rec.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Events == 0 || info.Events != failures {
		t.Fatalf("%d events queued, %d errors logged; want the same, not 0\n%s", info.Events, failures, logs.String())
	}
	if info.Sessions[ids[0]] != 3 || info.Sessions[ids[1]] != 4 {
		t.Errorf("queued per session: %v; want %s: slept, wake_started, woke; %s: slept, delete_started, backup_done, deleted", info.Sessions, ids[0], ids[1])
	}
	for _, id := range ids {
		if p, _ := rec.IsPending(ctx, id); !p {
			t.Errorf("%s is not marked pending", id)
		}
	}
	t.Logf("with Firestore down: %d transitions logged as errors and queued: %v", failures, info.Sessions)

	// Flushing while it is still down keeps everything.
	if res, err := rec.Flush(ctx); err == nil || res.Remaining != info.Events {
		t.Errorf("Flush with Firestore down: %+v, %v", res, err)
	}

	// Firestore is back (the emulator restarts empty, on a new port: what it held before the
	// crash is gone with it, which a real Firestore would have kept).
	back, err := testenv.StartFirestore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(back.Stop)
	fs2, err := firestore.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fs2.Close() }()
	ropts.AttemptTimeout = 30 * time.Second
	rec2 := events.New(fs2, ropts)
	res, err := rec2.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != info.Events || res.Remaining != 0 || res.Dead != 0 {
		t.Errorf("Flush after the outage: %+v, want %d written", res, info.Events)
	}
	if info, _ := rec2.Pending(ctx); info.Events != 0 || len(info.Sessions) != 0 {
		t.Errorf("still pending: %+v", info)
	}
	// The durable records agree with Redis again.
	for _, id := range ids {
		want, err := st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rec2.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Session.State != want.State || got.Session.UserID != want.UserID || !got.Session.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("%s: firestore %s/%s, redis %s/%s", id, got.Session.State, got.Session.UserID, want.State, want.UserID)
		}
		evs, err := rec2.Events(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if !e.Queued {
				t.Errorf("%s: event %s not marked as replayed from the queue", id, e.Type)
			}
		}
		t.Logf("%s: %s in both; %d events replayed", id, want.State, len(evs))
	}
	if got, _ := rec2.Get(ctx, ids[1]); got.DeletedAt.IsZero() {
		t.Errorf("the deleted session's record is still live: %+v", got)
	}

	// A transition after the outage is written straight away again.
	if _, err := svc.Sleep(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	svc2 := session.NewService(&cluster{replicas: map[string]int32{ids[0]: 0}}, st, session.Options{
		Domain: "example.test", Now: clock, Logger: logger, Recorder: rec2})
	advance(time.Minute)
	if _, err := svc2.Wake(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.Get(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if r, err := rec2.Get(ctx, ids[0]); err != nil || r.Session.State != session.StateRunning || r.LastEvent != "woke" {
		t.Errorf("after the outage: %+v, %v", r, err)
	}
	if n, _ := rec2.Pending(ctx); n.Events != 1 { // the Sleep above went through the dead client
		t.Errorf("pending after: %+v", n)
	}
	if _, err := rec2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := rec2.Get(ctx, ids[0]); r.Session.State != session.StateRunning {
		t.Errorf("a late sleep event rolled the record back: %+v", r.Session)
	}
}
