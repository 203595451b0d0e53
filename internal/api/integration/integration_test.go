// Package integration drives the HTTP API over real HTTP against the local cluster, a real
// redis-server and the Firestore emulator (internal/testenv), checking every answer against
// docs/api/openapi.yaml.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/redis/go-redis/v9"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api/apispec"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/client"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/ratelimit"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/reconcile"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

const apiKey = "integration-key-5f1c"

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Cluster: true, Redis: true, Firestore: true})
}

// fixture is one test's control plane: a namespace and a Redis prefix of its own, the parts
// built as internal/stack builds them with the configuration's defaults.
type fixture struct {
	t          *testing.T
	ns         string
	kube       *testenv.Kube
	rdb        *redis.Client
	store      *store.Store
	svc        *session.Service
	events     *events.Recorder // nil without Firestore
	limiter    *ratelimit.Limiter
	reconciler *sweep.ReconcileRunner
	sweep      http.Handler // POST /sweep behind its own auth
	spec       *apispec.Spec
	http       *http.Client // checks every answer against the document
}

// setup is what a test changes in its control plane; zero values keep the defaults.
type setup struct {
	now      func() time.Time // nil: time.Now
	probeURL string           // the sweep's probe URL template ("": the in-cluster Service)
	// firestore is the (emulator) project of the durable record; "": none, GET /usage is 501.
	firestore string
	price     float64 // per running hour (0: the default price)
	currency  string  // "": USD
	limits    session.Limits
	// gateway routes the workspaces through the Gateway API (kube.RoutingGateway, the local
	// cluster's GatewayClass) with wake on access's activator Service named, instead of
	// Ingresses.
	gateway bool
}

// domain is the workspaces' domain in these tests.
const domain = "ws.example.test"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, setup{})
}

// newFixtureWith is newFixture with a clock, a probe URL or a durable record.
func newFixtureWith(t *testing.T, su setup) *fixture {
	t.Helper()
	k, ns := env.Namespace(t)
	rdb, prefix := env.RedisFor(t)
	ctx := context.Background()
	if err := k.CreateBackupPVC(ctx, ns, "hyperbola-backups"); err != nil {
		t.Fatal(err)
	}
	log := quietLogger()
	ko := kube.Options{Namespace: ns, Domain: domain, Port: 8080, IngressClass: "nginx", ClusterIssuer: "letsencrypt",
		IngressNamespace: "ingress-nginx",
		BackupPVC:        "hyperbola-backups", BackupImage: "localhost/hyperbola-backup:1",
		BackupDeadline: 30 * time.Minute}
	clients := &kube.Clients{Write: k.Client, Read: k.Client, Metadata: k.Metadata(t)}
	if su.gateway {
		ko.Routing, ko.GatewayClass, ko.GatewaySourceCIDRs = kube.RoutingGateway, "hyperbola-local", kube.DefaultGatewaySourceCIDRs()
		ko.ActivatorService = "hyperbola-activator"
		gw, err := kube.NewClients(k.Config, kube.Budgets{})
		if err != nil {
			t.Fatal(err)
		}
		clients.Gateway, clients.GatewayRead, clients.Dynamic = gw.Gateway, gw.GatewayRead, gw.Dynamic
	}
	if err := ko.Validate(); err != nil {
		t.Fatal(err)
	}
	cluster := kube.NewClusterFromClients(clients, ko)
	f := &fixture{t: t, ns: ns, kube: k, rdb: rdb, limiter: ratelimit.New(rdb, prefix)}
	f.store = store.New(rdb, prefix, store.Options{TombstoneTTL: 24 * time.Hour, Now: su.now, Logger: log})
	var recorder session.Recorder
	var records reconcile.Records
	var flusher sweep.Flusher
	if su.firestore != "" {
		fs, err := firestore.NewClient(ctx, su.firestore)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = fs.Close() })
		if su.price == 0 {
			su.price = 0.0123 // HYPERBOLA_PRICE_PER_HOUR's default
		}
		if su.currency == "" {
			su.currency = "USD"
		}
		f.events = events.New(fs, events.Options{Prefix: prefix, PricePerRunningHour: su.price, Currency: su.currency,
			Redis: rdb, Now: su.now, Logger: log})
		recorder, records, flusher = f.events, f.events, f.events
	}
	f.svc = session.NewService(cluster, f.store, session.Options{Domain: domain, Now: su.now, Logger: log, Recorder: recorder,
		Limits: su.limits})
	f.reconciler = sweep.NewReconcileRunner(reconcile.Deps{Cluster: cluster, Store: f.store, Records: records,
		Now: f.svc.Options().Now, Logger: log}, f.store, reconcile.Options{GracePeriod: 10 * time.Minute, Domain: domain,
		IdleTimeout: 15 * time.Minute, SessionTTL: 24 * time.Hour}, 0)
	sw := sweep.New(sweep.Deps{Sessions: f.svc, Store: f.store, Now: f.svc.Options().Now, Logger: log, Flusher: flusher,
		Reconciler: f.reconciler}, sweep.Options{ProbeURL: su.probeURL, Namespace: ns, Port: ko.Port, Domain: domain,
		ReconcileEvery: 10 * time.Minute})
	if err := sw.Err(); err != nil {
		t.Fatal(err)
	}
	auth, err := sweep.NewAuth(sweep.AuthOptions{APIKeys: []string{apiKey}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	f.sweep = sweep.Handler(sw, auth)
	spec, err := apispec.Load(ctx, "../../../docs/api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f.spec = spec
	// As long as the client gives a create that restores (the archive is read through first).
	f.http = &http.Client{Timeout: client.RestoreAttemptTimeout, Transport: &apispec.Transport{Spec: spec, Fail: func(err error) { t.Error(err) }}}
	return f
}

// check is GET /ready's: Redis answers PING and the Kubernetes API server /readyz.
func (f *fixture) check(ctx context.Context) map[string]error {
	out := map[string]error{"redis": f.store.Ping(ctx)}
	_, err := f.kube.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	out["kubernetes"] = err
	return out
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// server starts one API instance over real HTTP on 127.0.0.1, with the configuration's
// limits (opts.CreateLimit overrides the create limit).
func (f *fixture) server(opts api.Options) *httptest.Server {
	f.t.Helper()
	apiOpts := api.Options{APIKeys: []string{apiKey}, CreateLimit: 100, KeyLimit: 1200}
	if opts.CreateLimit > 0 {
		apiOpts.CreateLimit = opts.CreateLimit
	}
	srv := httptest.NewServer(api.New(f.deps(), apiOpts))
	f.t.Cleanup(srv.Close)
	return srv
}

// call sends one request with the key and decodes the JSON answer into out (when not nil).
func (f *fixture) call(method, url, body string, out any) (int, http.Header) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("X-API-Key", apiKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.http.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			f.t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, resp.Header
}

// waitHTTP polls the status route until the session is in want with nothing pending.
func (f *fixture) waitHTTP(base, id string, want session.State) *session.Session {
	f.t.Helper()
	start := time.Now()
	var s session.Session
	for time.Since(start) < time.Minute {
		s = session.Session{} // decode afresh: omitted members must not linger
		if code, _ := f.call("GET", base+"/session/"+id+"/status", "", &s); code != 200 {
			f.t.Fatalf("status of %s: %d", id, code)
		}
		if s.State == want && s.Pending == session.PendingNone {
			f.t.Logf("%s %s after %v", id, want, time.Since(start).Round(time.Millisecond))
			return &s
		}
		time.Sleep(25 * time.Millisecond)
	}
	f.t.Fatalf("%s: want %s, still %s (pending %q, reason %q)", id, want, s.State, s.Pending, s.Reason)
	return nil
}

func (f *fixture) pvcExists(id string) bool {
	f.t.Helper()
	_, err := f.kube.Client.CoreV1().PersistentVolumeClaims(f.ns).Get(context.Background(), "vs-code-"+id+"-data", metav1.GetOptions{})
	return err == nil
}

// routedTo is the Service session id's HTTPRoute sends its host to ("" without a route).
func (f *fixture) routedTo(id string) string {
	f.t.Helper()
	gw, err := gateway.NewForConfig(f.kube.Config)
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := gw.GatewayV1().HTTPRoutes(f.ns).Get(context.Background(), "vs-code-"+id, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	} else if err != nil {
		f.t.Fatal(err)
	}
	return string(r.Spec.Rules[0].BackendRefs[0].Name)
}

// TestLifecycleOverHTTP: create → running → sleep → wake → running → delete with a backup →
// deleted, with raw HTTP requests, every answer checked against the OpenAPI document; in each
// routing mode (in gateway mode the HTTPRoute follows the session to the activator and back).
func TestLifecycleOverHTTP(t *testing.T) {
	t.Run("ingress", func(t *testing.T) { testLifecycleOverHTTP(t, setup{}) })
	t.Run("gateway", func(t *testing.T) { testLifecycleOverHTTP(t, setup{gateway: true}) })
}

func testLifecycleOverHTTP(t *testing.T, su setup) {
	f := newFixtureWith(t, su)
	base := f.server(api.Options{}).URL
	var created session.Session
	// the route's backend, in gateway mode (ingress mode's Ingress is the kube package's test)
	routed := func(stage, want string) {
		t.Helper()
		if su.gateway {
			if got := f.routedTo(created.ID); got != want {
				t.Errorf("%s: routed to %q, want %q", stage, got, want)
			}
		}
	}

	var health api.HealthResponse
	if code, _ := f.call("GET", base+"/ready", "", &health); code != 200 || health.Checks["redis"] != "ok" || health.Checks["kubernetes"] != "ok" {
		t.Fatalf("health %d %+v", code, health)
	}

	code, h := f.call("POST", base+"/session/create", `{"user_id":"ada@example.com","labels":{"course":"cs101"}}`, &created)
	if code != 201 || created.Password == "" || created.State != session.StateCreating || !session.ValidID(created.ID) ||
		created.WorkspaceURL != "https://vs-code-"+created.ID+".ws.example.test" || h.Get("RateLimit-Limit") != "100" {
		t.Fatalf("create: %d %+v %v", code, created, h)
	}
	id := created.ID
	s := f.waitHTTP(base, id, session.StateRunning)
	if s.Password != "" {
		t.Fatal("the status carries the password")
	}
	routed("running", "vs-code-"+id)

	code, _ = f.call("POST", base+"/session/"+id+"/sleep", "", s)
	if code != 200 || s.State != session.StateSleeping {
		t.Fatalf("sleep: %d %+v", code, s)
	}
	code, _ = f.call("POST", base+"/session/"+id+"/sleep", "", s) // again: a no-op success
	if code != 200 || s.State != session.StateSleeping {
		t.Fatalf("sleep again: %d %+v", code, s)
	}
	routed("asleep", "hyperbola-activator")
	code, _ = f.call("POST", base+"/session/"+id+"/wake", "", s)
	if code != 200 || (s.State != session.StateWaking && s.State != session.StateRunning) {
		t.Fatalf("wake: %d %+v", code, s)
	}
	// With ?wait= the status is held until the workspace runs: no polling. An answer that is
	// not running yet must have been held the whole wait.
	for start := time.Now(); ; {
		asked := time.Now()
		s = &session.Session{}
		if code, _ := f.call("GET", base+"/session/"+id+"/status?wait=20s", "", s); code != 200 {
			t.Fatalf("status?wait: %d", code)
		}
		if s.State == session.StateRunning && s.Pending == session.PendingNone {
			t.Logf("running %v after the wake, held %v", time.Since(start).Round(time.Millisecond), time.Since(asked).Round(time.Millisecond))
			break
		}
		if held := time.Since(asked); held < 19*time.Second || time.Since(start) > 2*time.Minute {
			t.Fatalf("status?wait=20s answered %s (pending %q) after %v", s.State, s.Pending, held)
		}
	}
	routed("woken", "vs-code-"+id)

	var list api.ListResponse
	if code, _ := f.call("GET", base+"/sessions?user_id=ada%40example.com", "", &list); code != 200 || list.Count != 1 || list.Sessions[0].ID != id {
		t.Fatalf("list: %d %+v", code, list)
	}

	code, _ = f.call("DELETE", base+"/session/"+id, "", s)
	if code != 202 || s.State != session.StateDeleting {
		t.Fatalf("delete: %d %+v", code, s)
	}
	done := f.waitHTTP(base, id, session.StateDeleted)
	if !strings.HasPrefix(done.BackupLocation, "pvc://hyperbola-backups/") {
		t.Fatalf("no backup location: %+v", done)
	}
	if f.pvcExists(id) {
		t.Fatal("the volume outlived a completed delete")
	}
	routed("deleted", "")
	code, _ = f.call("DELETE", base+"/session/"+id, "", s)
	if code != 200 || s.State != session.StateDeleted {
		t.Fatalf("delete again: %d %+v", code, s)
	}
	var e wire.ErrorBody
	if code, _ := f.call("POST", base+"/session/"+id+"/wake", "", &e); code != 409 || e.Error.Code != "conflict" {
		t.Fatalf("wake a deleted session: %d %+v", code, e)
	}
	if code, _ := f.call("GET", base+"/session/zz999999/status", "", &e); code != 404 || e.Error.Code != "not_found" {
		t.Fatalf("unknown session: %d %+v", code, e)
	}
	var m api.MetricsResponse
	if code, _ := f.call("GET", base+"/metrics", "", &m); code != 200 || m.Sessions.ByState["deleted"] != 1 || m.Counters["creates"] != 1 {
		t.Fatalf("metrics: %d %+v", code, m)
	}
}

// TestLifecycleThroughClient drives the same lifecycle through internal/client, the way the
// provider does, plus an in-place update and the typed errors.
func TestLifecycleThroughClient(t *testing.T) {
	f := newFixture(t)
	base := f.server(api.Options{}).URL
	c, err := client.New(base, apiKey, client.WithHTTPClient(f.http))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wait := func(id string, want session.State) *session.Session {
		t.Helper()
		start := time.Now()
		var last *session.Session
		for time.Since(start) < time.Minute {
			s, err := c.Await(ctx, id, session.MaxAwait) // held while it starts
			if err != nil {
				t.Fatal(err)
			}
			if s.State == want && s.Pending == session.PendingNone {
				return s
			}
			last = s
			time.Sleep(25 * time.Millisecond)
		}
		t.Fatalf("%s never became %s: %+v", id, want, last)
		return nil
	}

	s, err := c.Create(ctx, session.CreateRequest{UserID: "grace@example.com", RequestID: "tf-create-1"})
	if err != nil || s.Password == "" {
		t.Fatalf("%+v %v", s, err)
	}
	again, err := c.Create(ctx, session.CreateRequest{UserID: "grace@example.com", RequestID: "tf-create-1"})
	if err != nil || again.ID != s.ID || again.Password != s.Password {
		t.Fatalf("a retried create (same Idempotency-Key) answers the first session: %+v %v", again, err)
	}
	id := s.ID
	wait(id, session.StateRunning)

	size := "6Gi"
	up, err := c.Update(ctx, id, session.UpdateRequest{Storage: &size, Labels: map[string]string{"team": "b"}})
	if err != nil || up.Storage != "6Gi" || up.Labels["team"] != "b" {
		t.Fatalf("update: %+v %v", up, err)
	}
	small := "1Gi"
	if _, err := c.Update(ctx, id, session.UpdateRequest{Storage: &small}); session.KindOf(err) != session.KindInvalid || session.FieldOf(err) != "storage" {
		t.Fatalf("shrinking: %v", err)
	}
	wait(id, session.StateRunning)

	if s, err = c.Sleep(ctx, id); err != nil || s.State != session.StateSleeping {
		t.Fatalf("sleep: %+v %v", s, err)
	}
	if _, err = c.Wake(ctx, id); err != nil {
		t.Fatalf("wake: %v", err)
	}
	wait(id, session.StateRunning)

	page, err := c.List(ctx, session.ListOptions{UserID: "grace@example.com", Limit: 10})
	if err != nil || len(page.Sessions) != 1 {
		t.Fatalf("list: %+v %v", page, err)
	}

	if s, err = c.Delete(ctx, id, session.DeleteOptions{}); err != nil || s.State != session.StateDeleting {
		t.Fatalf("delete: %+v %v", s, err)
	}
	done := wait(id, session.StateDeleted)
	if done.BackupLocation == "" || f.pvcExists(id) {
		t.Fatalf("deleted without a backup, or the volume remains: %+v", done)
	}
	if _, err := c.Wake(ctx, id); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("waking a deleted session: %v", err)
	}
	if _, err := c.Get(ctx, "zz999999"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	bad, _ := client.New(base, "not-the-key", client.WithHTTPClient(f.http))
	if _, err := bad.Get(ctx, id); session.FieldOf(err) != "api_key" {
		t.Fatalf("wrong key: %v", err)
	}
}

// TestCreateLimitAcrossInstances: four API instances sharing one Redis admit exactly the
// configured number of creates per client IP per window, however the requests spread.
func TestCreateLimitAcrossInstances(t *testing.T) {
	const limit, total, instances = 10, 40, 4
	f := newFixture(t)
	var bases []string
	for range instances {
		bases = append(bases, f.server(api.Options{CreateLimit: limit}).URL)
	}
	type result struct {
		code   int
		header http.Header
	}
	results := make([]result, total)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range total {
		wg.Go(func() {
			<-start
			body := fmt.Sprintf(`{"user_id":"load-%d@example.com"}`, i)
			req, _ := http.NewRequest(http.MethodPost, bases[i%instances]+"/session/create", bytes.NewBufferString(body))
			req.Header.Set("X-API-Key", apiKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := f.http.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results[i] = result{resp.StatusCode, resp.Header}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	created, limited := 0, 0
	perInstance := make([]int, instances)
	for i, r := range results {
		switch r.code {
		case 201:
			created++
			perInstance[i%instances]++
		case 429:
			limited++
			if r.header.Get("Retry-After") == "" || r.header.Get("RateLimit-Limit") != fmt.Sprint(limit) || r.header.Get("RateLimit-Remaining") != "0" {
				t.Errorf("429 without its headers: %v", r.header)
			}
		default:
			t.Errorf("request %d: %d", i, r.code)
		}
	}
	t.Logf("%d concurrent creates from one IP over %d instances (limit %d/min): %d created %v, %d refused with 429, in %v",
		total, instances, limit, created, perInstance, limited, time.Since(began).Round(time.Millisecond))
	if created != limit || limited != total-limit {
		t.Fatalf("created %d and refused %d; want exactly %d and %d", created, limited, limit, total-limit)
	}
}
