package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/client"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/reconcile"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// deps wires the API as the stack does for the functions: the Service (a Toucher), the usage
// report when Firestore is configured, the reconcile runner and the sweep (with the
// configuration's probe URL) behind its own auth.
func (f *fixture) deps() api.Deps {
	d := api.Deps{
		Manager: f.svc, Health: api.HealthFunc(f.check),
		Limiter:    f.limiter,
		Logger:     quietLogger(),
		Reconciler: f.reconciler,
		Sweep:      f.sweep,
		Claims:     f.store, // a create's idempotency key bound to its body, as the stack wires it
	}
	if f.events != nil {
		d.Usage = f.events
	}
	return d
}

// clock is the shared settable clock.
type clock = testenv.Clock

func newClock() *clock { return testenv.NewClock(time.Now().UTC().Truncate(time.Millisecond)) }

// warmOnce runs the emulator's first transaction (~10 s on a cold JVM) once, so the
// recorder's 5 s attempts never fall through to the queue because of it.
var warmOnce sync.Once

// firestoreProject returns a fresh emulator project for t, the emulator warmed up.
func firestoreProject(t *testing.T) string {
	t.Helper()
	p := env.FirestoreProject(t)
	warmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := firestore.NewClient(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		ref := c.Collection("warm").Doc("up")
		if err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			if _, err := tx.GetAll([]*firestore.DocumentRef{ref}); err != nil {
				return err
			}
			return tx.Set(ref, map[string]any{"ok": true})
		}); err != nil {
			t.Fatalf("warming the emulator up: %v", err)
		}
	})
	return p
}

// create makes a session for user with the given body members and waits until it runs.
func (f *fixture) create(base, user, more string) string {
	f.t.Helper()
	var s session.Session
	if code, _ := f.call("POST", base+"/session/create", fmt.Sprintf(`{"user_id":%q%s}`, user, more), &s); code != 201 {
		f.t.Fatalf("create: %d", code)
	}
	f.waitHTTP(base, s.ID, session.StateRunning)
	return s.ID
}

// TestActivityOverHTTP: POST /session/{uuid}/activity moves last_activity (and the idle
// deadline) to the Service's now, through raw HTTP and through the client; 404 unknown; 409
// once deleting. Without Firestore, GET /usage is a 501.
func TestActivityOverHTTP(t *testing.T) {
	clk := newClock()
	f := newFixtureWith(t, setup{now: clk.Now})
	base := f.server(api.Options{}).URL
	id := f.create(base, "act@example.com", "")
	created := clk.Now()

	clk.Add(5 * time.Minute)
	var a api.ActivityResponse
	code, _ := f.call("POST", base+"/session/"+id+"/activity", "", &a)
	if code != 200 || a.ID != id || !a.LastActivity.Equal(clk.Now()) {
		t.Fatalf("activity: %d %+v, want last_activity %v", code, a, clk.Now())
	}
	var s session.Session
	if f.call("GET", base+"/session/"+id+"/status", "", &s); !s.LastActivity.Equal(clk.Now()) {
		t.Fatalf("status last_activity %v, want %v", s.LastActivity, clk.Now())
	}
	// the idle deadline moved with it: no longer a candidate at created+idle_timeout
	ids, err := f.store.IdleCandidates(context.Background(), created.Add(16*time.Minute), 10)
	if err != nil || len(ids) != 0 {
		t.Fatalf("idle candidates 16m after create, 11m after the activity: %v %v", ids, err)
	}
	if ids, _ := f.store.IdleCandidates(context.Background(), clk.Now().Add(16*time.Minute), 10); len(ids) != 1 {
		t.Fatalf("idle candidates 16m after the activity: %v", ids)
	}

	c, err := client.New(base, apiKey, client.WithHTTPClient(f.http))
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	got, err := c.Touch(context.Background(), id)
	if err != nil || !got.LastActivity.Equal(clk.Now()) {
		t.Fatalf("client Touch: %+v %v", got, err)
	}
	t.Logf("last_activity moved %v → %v (API) → %v (client)", created.Format(time.RFC3339), a.LastActivity.Format(time.RFC3339), got.LastActivity.Format(time.RFC3339))

	var e wire.ErrorBody
	if code, _ := f.call("POST", base+"/session/zz999999/activity", "", &e); code != 404 || e.Error.Code != "not_found" {
		t.Fatalf("unknown: %d %+v", code, e)
	}
	if _, err := c.Touch(context.Background(), "zz999999"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("client, unknown: %v", err)
	}
	if code, _ := f.call("DELETE", base+"/session/"+id+"?skip_backup=true", "", &s); code != 202 && code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := f.call("POST", base+"/session/"+id+"/activity", "", &e); code != 409 || e.Error.Code != "conflict" {
		t.Fatalf("deleting: %d %+v", code, e)
	}
	if _, err := c.Touch(context.Background(), id); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("client, deleting: %v", err)
	}
	lastHour := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if code, _ := f.call("GET", base+"/usage?from="+lastHour.Format(time.RFC3339), "", &e); code != 501 || e.Error.Code != "unimplemented" {
		t.Fatalf("usage without Firestore: %d %+v", code, e)
	}
	if _, err := c.Usage(context.Background(), events.UsageQuery{From: lastHour}); !client.IsUnimplemented(err) {
		t.Fatalf("client usage without Firestore: %v", err)
	}
}

// TestSweepOverHTTP: POST /sweep with the API key (no key: the sweep's own 401) probes
// code-server stand-ins through HYPERBOLA_SWEEP_PROBE_URL, puts the idle workspace to sleep,
// keeps the one with a fresh heartbeat, and reconciles on the first sweep of the period only.
func TestSweepOverHTTP(t *testing.T) {
	clk := newClock()
	var mu sync.Mutex
	beats := map[string]int64{} // id → lastHeartbeat (ms)
	probes := map[string]int{}
	standIn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/healthz")
		mu.Lock()
		ms, known := beats[id]
		probes[id]++
		mu.Unlock()
		if !ok || !known {
			http.NotFound(w, r)
			return
		}
		status := "expired"
		if ms > 0 && clk.Now().UnixMilli()-ms < 60_000 {
			status = "alive"
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"status":%q,"lastHeartbeat":%d}`, status, ms)
	}))
	t.Cleanup(standIn.Close)
	f := newFixtureWith(t, setup{now: clk.Now, probeURL: standIn.URL + "/{id}/healthz"})
	base := f.server(api.Options{}).URL

	idle := f.create(base, "idle@example.com", `,"idle_timeout":"1m"`)
	active := f.create(base, "busy@example.com", `,"idle_timeout":"1m"`)
	clk.Add(2 * time.Minute)
	mu.Lock()
	beats[idle] = 0                           // code-server has not beaten since it started
	beats[active] = clk.Now().UnixMilli() - 5 // an open tab
	mu.Unlock()

	post := func(key string, out any) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/sweep", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := f.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := decodeJSON(resp, out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header
	}
	var e wire.ErrorBody
	if code, h := post("", &e); code != 401 || e.Error.Code != "unauthenticated" || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("no key: %d %+v", code, e)
	}
	if code, _ := post("wrong-key", &e); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}
	var rep sweep.Report
	code, h := post(apiKey, &rep)
	if code != 200 || rep.Skipped || rep.Candidates != 2 || rep.Probed != 2 || rep.Slept != 1 || rep.KeptActive != 1 ||
		rep.ProbeErrors != 0 || rep.Errors != 0 || h.Get("RateLimit-Limit") != "" {
		t.Fatalf("sweep: %d %+v", code, rep)
	}
	if rep.Reconciled == nil || rep.Reconciled.Observed != 2 || rep.Reconciled.Errors != 0 || rep.Reconciled.Rebuilt != 0 {
		t.Fatalf("the first sweep of the period reconciles: %+v", rep.Reconciled)
	}
	t.Logf("sweep: candidates %d, probed %d, slept %d, kept active %d, reconciled %+v, in %d ms",
		rep.Candidates, rep.Probed, rep.Slept, rep.KeptActive, *rep.Reconciled, rep.DurationMS)
	var s session.Session
	if f.call("GET", base+"/session/"+idle+"/status", "", &s); s.State != session.StateSleeping {
		t.Fatalf("idle workspace: %s", s.State)
	}
	if f.call("GET", base+"/session/"+active+"/status", "", &s); s.State != session.StateRunning {
		t.Fatalf("active workspace: %s", s.State)
	}
	mu.Lock()
	if probes[idle] != 1 || probes[active] != 1 {
		t.Fatalf("probes %v", probes)
	}
	mu.Unlock()

	rep = sweep.Report{}
	if code, _ := post(apiKey, &rep); code != 200 || rep.Reconciled != nil || rep.Slept != 0 {
		t.Fatalf("a second sweep within the period: %d %+v", code, rep)
	}
}

// TestUsageOverHTTP: a session created, running for an hour, then asleep for half an hour (a
// controlled clock) is reported with the hours and costs computed by hand, over the whole
// history and within a window, through raw HTTP and through the client.
func TestUsageOverHTTP(t *testing.T) {
	clk := newClock()
	f := newFixtureWith(t, setup{now: clk.Now, firestore: firestoreProject(t), price: 0.10, currency: "EUR"})
	if f.events == nil {
		t.Fatal("no recorder with GOOGLE_CLOUD_PROJECT set")
	}
	base := f.server(api.Options{}).URL
	t0 := clk.Now()
	id := f.create(base, "ada@example.com", "")
	clk.Add(time.Hour)
	var s session.Session
	if code, _ := f.call("POST", base+"/session/"+id+"/sleep", "", &s); code != 200 || s.State != session.StateSleeping {
		t.Fatalf("sleep: %d %s", code, s.State)
	}
	clk.Add(30 * time.Minute)

	var rep events.UsageReport
	since := "&from=" + url.QueryEscape(t0.Format(time.RFC3339Nano))
	code, _ := f.call("GET", base+"/usage?user_id=ada%40example.com"+since, "", &rep)
	if code != 200 || len(rep.Sessions) != 1 || len(rep.Users) != 1 || rep.PendingEvents != 0 {
		t.Fatalf("usage: %d %+v", code, rep)
	}
	// By hand: running 1 h, sleeping 0.5 h; at 0.10 EUR/h, 0.10 spent against 0.15 always on.
	want := events.Usage{RunningHours: 1, SleepingHours: 0.5, LifetimeHours: 1.5, ComputeCost: 0.1, Cost: 0.1, AlwaysOnCost: 0.15, SavingsPercent: 33.33}
	check := func(what string, got events.Usage, want events.Usage) {
		t.Helper()
		near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
		if !near(got.RunningHours, want.RunningHours) || !near(got.SleepingHours, want.SleepingHours) || !near(got.StoppedHours, 0) ||
			!near(got.LifetimeHours, want.LifetimeHours) || !near(got.ComputeCost, want.ComputeCost) || !near(got.Cost, want.Cost) ||
			!near(got.AlwaysOnCost, want.AlwaysOnCost) || !near(got.SavingsPercent, want.SavingsPercent) {
			t.Fatalf("%s: %+v, want %+v", what, got, want)
		}
	}
	check("total", rep.Total, want)
	check("user", rep.Users[0].Usage, want)
	check("session", rep.Sessions[0].Usage, want)
	if su := rep.Sessions[0]; su.SessionID != id || su.State != session.StateSleeping || !su.CreatedAt.Equal(t0) ||
		rep.Prices.Currency != "EUR" || rep.Prices.PerRunningHour != 0.1 || rep.Users[0].Sessions != 1 {
		t.Fatalf("report %+v", rep)
	}
	t.Logf("usage: running %.2f h, sleeping %.2f h, cost %.4f %s, always on %.4f, savings %.2f%%",
		rep.Total.RunningHours, rep.Total.SleepingHours, rep.Total.Cost, rep.Prices.Currency, rep.Total.AlwaysOnCost, rep.Total.SavingsPercent)

	// A window: [t0+30m, t0+75m) holds 30 min running and 15 min asleep.
	q := url.Values{"from": {t0.Add(30 * time.Minute).Format(time.RFC3339Nano)}, "to": {t0.Add(75 * time.Minute).Format(time.RFC3339Nano)}}
	rep = events.UsageReport{}
	if code, _ := f.call("GET", base+"/usage?"+q.Encode(), "", &rep); code != 200 {
		t.Fatalf("window: %d", code)
	}
	check("window", rep.Total, events.Usage{RunningHours: 0.5, SleepingHours: 0.25, LifetimeHours: 0.75, ComputeCost: 0.05, Cost: 0.05, AlwaysOnCost: 0.075, SavingsPercent: 33.33})

	c, err := client.New(base, apiKey, client.WithHTTPClient(f.http))
	if err != nil {
		t.Fatal(err)
	}
	crep, err := c.Usage(context.Background(), events.UsageQuery{UserID: "ada@example.com", From: t0})
	if err != nil {
		t.Fatal(err)
	}
	check("client", crep.Total, want)
	if other, err := c.Usage(context.Background(), events.UsageQuery{UserID: "nobody@example.com", From: t0}); err != nil || len(other.Sessions) != 0 || other.Total.LifetimeHours != 0 {
		t.Fatalf("another user: %+v %v", other, err)
	}
	var e wire.ErrorBody
	for target, field := range map[string]string{
		"/usage":                           "from", // every record ever written: refused
		"/usage?user_id=ada%40example.com": "from",
		"/usage?from=yesterday":            "from",
		"/usage?from=" + url.QueryEscape(t0.Add(-events.MaxUsageWindow-time.Hour).Format(time.RFC3339)):                               "from",
		"/usage?from=" + url.QueryEscape(t0.Format(time.RFC3339)) + "&to=" + url.QueryEscape(t0.Add(-time.Hour).Format(time.RFC3339)): "from",
		"/usage?to=2026-02-30T00:00:00Z": "to",
	} {
		if code, _ := f.call("GET", base+target, "", &e); code != 400 || e.Error.Field != field {
			t.Errorf("%s: %d %+v", target, code, e)
		}
	}
}

// TestReconcileOverHTTP: after FLUSHALL, POST /reconcile?dry_run=true reports the session it
// would rebuild and changes nothing; a reconcile held elsewhere makes it 409 busy; the real
// one brings the session back, running, and a second one finds nothing to do.
func TestReconcileOverHTTP(t *testing.T) {
	f := newFixtureWith(t, setup{firestore: firestoreProject(t)})
	base := f.server(api.Options{}).URL
	id := f.create(base, "grace@example.com", `,"labels":{"course":"cs101"}`)
	ctx := context.Background()

	if err := f.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var e wire.ErrorBody
	if code, _ := f.call("GET", base+"/session/"+id+"/status", "", &e); code != 404 {
		t.Fatalf("after FLUSHALL: %d", code)
	}
	var rep reconcile.Report
	if code, _ := f.call("POST", base+"/reconcile?dry_run=true", "", &rep); code != 200 || !rep.DryRun || !hasItem(rep.Rebuilt, id) {
		t.Fatalf("dry run: %d %+v", code, rep)
	}
	if code, _ := f.call("GET", base+"/session/"+id+"/status", "", &e); code != 404 {
		t.Fatalf("a dry run changed something: %d", code)
	}

	release, ok, err := f.store.Lease(ctx, sweep.ReconcileLeaseName, time.Minute)
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	code, h := f.call("POST", base+"/reconcile", "", &e)
	if code != 409 || e.Error.Code != "busy" || h.Get("Retry-After") != "10" {
		t.Fatalf("while another reconcile runs: %d %+v %v", code, e, h)
	}
	if err := release(ctx); err != nil {
		t.Fatal(err)
	}

	rep = reconcile.Report{}
	if code, _ := f.call("POST", base+"/reconcile", "", &rep); code != 200 || rep.DryRun || !hasItem(rep.Rebuilt, id) || len(rep.Errors) != 0 {
		t.Fatalf("reconcile: %d %+v", code, rep)
	}
	t.Logf("reconcile: observed %d, rebuilt %v", rep.Observed, rep.Rebuilt)
	s := f.waitHTTP(base, id, session.StateRunning)
	if s.UserID != "grace@example.com" || s.Labels["course"] != "cs101" {
		t.Fatalf("rebuilt session %+v", s)
	}
	c, err := client.New(base, apiKey, client.WithHTTPClient(f.http))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Reconcile(ctx, false)
	if err != nil || again.Observed != 1 || len(again.Rebuilt)+len(again.Adopted)+len(again.Removed)+len(again.Errors) != 0 {
		t.Fatalf("a second reconcile: %+v %v", again, err)
	}
}

func hasItem(items []reconcile.Item, id string) bool {
	for _, it := range items {
		if it.ID == id {
			return true
		}
	}
	return false
}

// decodeJSON reads resp's JSON body into out.
func decodeJSON(resp *http.Response, out any) error {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%d %s: %w", resp.StatusCode, b, err)
	}
	return nil
}
