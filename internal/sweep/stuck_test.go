package sweep_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// syncBuffer is a log sink safe for the sweep's concurrent workers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log lines with the given message.
func (s *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(s.b.Bytes(), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestRunNamesSessionsStuckInAStep(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	t0 := clk.Now()
	const after = 30 * time.Minute
	stuck, young := running("astuck01", t0), running("ayoung01", t0)
	stuck.BackupOnDelete, young.BackupOnDelete = true, true
	w.Seed(stuck, young, running("arunning", t0))
	ctx := context.Background()
	// Their backup Jobs never end (the fake cluster runs them until FinishBackup): both stay
	// in await-backup, one entered it two minutes later than the other.
	if _, err := w.svc.Delete(ctx, "astuck01", session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	if _, err := w.svc.Delete(ctx, "ayoung01", session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"astuck01", "ayoung01"} {
		if got, _ := w.Store.Get(ctx, id); got.Pending != session.PendingBackup {
			t.Fatalf("%s is in step %q, want await-backup", id, got.Pending)
		}
	}
	// astuck01 is a minute past the limit, ayoung01 a minute short of it.
	clk.Set(t0.Add(after + time.Minute))
	_ = w.Store.Touch(ctx, "arunning", clk.Now()) // not idle: no probe needed

	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: &heartbeats{}, Now: clk.Now, Logger: log},
		sweep.Options{StuckAfter: after}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := sweep.StuckSession{ID: "astuck01", UserID: "u@example.com", Step: string(session.PendingBackup),
		Since: t0.UTC(), StuckSeconds: int64((after + time.Minute) / time.Second)}
	if rep.StuckCount != 1 || len(rep.Stuck) != 1 || rep.Stuck[0] != want {
		t.Fatalf("stuck %d %+v, want 1 [%+v]", rep.StuckCount, rep.Stuck, want)
	}
	if rep.Advanced != 2 || rep.Errors != 0 {
		t.Fatalf("the pending steps were not driven as usual: %+v", rep)
	}
	warned := logs.lines(t, "session stuck in a pending step")
	if len(warned) != 1 || warned[0]["level"] != "WARN" || warned[0]["id"] != "astuck01" || warned[0]["step"] != "await-backup" {
		t.Fatalf("stuck warnings %v, want one for astuck01 in await-backup", warned)
	}
	// The report's JSON names it by id and step.
	b, _ := json.Marshal(rep)
	var out struct {
		Stuck      []map[string]any `json:"stuck"`
		StuckCount int              `json:"stuck_count"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.StuckCount != 1 || out.Stuck[0]["id"] != "astuck01" ||
		out.Stuck[0]["step"] != "await-backup" || out.Stuck[0]["stuck_seconds"] != float64(31*60) {
		t.Fatalf("report JSON %s", b)
	}

	// Once its backup ends, the next sweep drives the step on and names nothing.
	w.Cluster.FinishBackup("astuck01", 1, session.BackupSucceeded, "")
	clk.Add(time.Minute)
	rep, err = sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: &heartbeats{}, Now: clk.Now, Logger: quiet()},
		sweep.Options{StuckAfter: after}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// ayoung01 has now been in its step for 30m exactly: not longer than the limit.
	if rep.StuckCount != 0 || len(rep.Stuck) != 0 {
		t.Fatalf("stuck %d %+v after the backup ended, want none", rep.StuckCount, rep.Stuck)
	}
}

func TestRunCountsStuckBeyondTheList(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	t0 := clk.Now()
	var ss []*session.Session
	for i := range sweep.MaxStuckListed + 5 {
		s := running("c"+string(rune('a'+i/26))+string(rune('a'+i%26))+"00000", t0)
		s.State, s.Pending, s.PendingSince = session.StateCreating, session.PendingReady, t0.Add(time.Duration(i)*time.Second)
		ss = append(ss, s)
	}
	w.Seed(ss...)
	clk.Add(2 * time.Hour)
	rep, err := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: &heartbeats{}, Now: clk.Now, Logger: quiet()},
		sweep.Options{}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.StuckCount != len(ss) || len(rep.Stuck) != sweep.MaxStuckListed || rep.Stuck[0].ID != ss[0].ID ||
		rep.Stuck[sweep.MaxStuckListed-1].ID != ss[sweep.MaxStuckListed-1].ID {
		t.Fatalf("stuck %d, named %d (first %+v), want %d counted and the oldest %d named", rep.StuckCount, len(rep.Stuck),
			rep.Stuck[0], len(ss), sweep.MaxStuckListed)
	}
}
