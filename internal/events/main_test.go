package events

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Firestore: true, Redis: true})
}

// clock is the shared settable clock.
type clock = testenv.Clock

// warmOnce runs the package emulator's first transaction, which takes ~10 s on a cold JVM,
// before any test measures anything.
var warmOnce sync.Once

// firestoreClient returns a client on a fresh emulator project for t.
func firestoreClient(t *testing.T) *firestore.Client {
	t.Helper()
	project := env.FirestoreProject(t)
	warmOnce.Do(func() { warm(t, project) })
	c, err := firestore.NewClient(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func warm(t *testing.T, project string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := firestore.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ref := c.Collection("warm").Doc("up")
	err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		if _, err := tx.GetAll([]*firestore.DocumentRef{ref}); err != nil {
			return err
		}
		return tx.Set(ref, map[string]any{"ok": true})
	})
	if err != nil {
		t.Fatalf("warming the emulator up: %v", err)
	}
}

// deadFirestore returns a client for a server that is not there (as when Firestore is down).
func deadFirestore(t *testing.T) *firestore.Client {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:"+strconv.Itoa(port))
	c, err := firestore.NewClient(context.Background(), "down")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// deadRedis returns a client for a Redis that is not there.
func deadRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// fastOptions fail over to the queue quickly.
func fastOptions(rdb redis.UniversalClient, prefix string, c *clock) Options {
	return Options{Redis: rdb, Prefix: prefix, Attempts: 2, Backoff: 10 * time.Millisecond,
		AttemptTimeout: time.Second, Now: c.Now, PricePerRunningHour: 0.10}
}

// testSession is a session as the Service would hand it to Record.
func testSession(id, user string, st session.State, created time.Time) *session.Session {
	return &session.Session{
		ID: id, UserID: user, State: st, WorkspaceURL: "https://vs-code-" + id + ".example.test",
		Image: "codercom/code-server:4.96.4", Storage: "5Gi", CPU: "250m", Memory: "256Mi",
		IdleTimeout: session.Duration(15 * time.Minute), BackupOnDelete: true,
		Labels: map[string]string{"team": "a"}, CreatedAt: created, UpdatedAt: created,
		LastActivity: created, ExpiresAt: created.Add(24 * time.Hour),
	}
}

// step records one transition of s at t, the way session.Service.record does.
func step(t *testing.T, ctx context.Context, r *Recorder, s *session.Session, typ string, to session.State, when time.Time, detail string) {
	t.Helper()
	from := s.State
	if typ == "created" {
		from = ""
	}
	s.State, s.UpdatedAt = to, when
	ev := session.Event{SessionID: s.ID, UserID: s.UserID, Type: typ, From: from, To: to,
		Actor: session.ActorOf(ctx), At: when, Detail: detail, Session: s.Clone()}
	if err := r.Record(ctx, ev); err != nil {
		t.Fatalf("Record(%s %s): %v", s.ID, typ, err)
	}
}
