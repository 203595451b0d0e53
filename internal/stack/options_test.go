package stack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activator"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

func read(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newStack builds a stack on an in-memory Redis and a fake cluster.
func newStack(t *testing.T, env map[string]string) *Stack {
	t.Helper()
	mr := miniredis.RunT(t)
	st, err := New(context.Background(), read(t, env), Parts{
		Redis: redis.NewClient(&redis.Options{Addr: mr.Addr()}), Kube: fake.NewClientset(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestKubeOptions(t *testing.T) {
	o, err := KubeOptions(read(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.Namespace != "hyperbola" || o.Port != 8080 || o.BackupPVC != "hyperbola-backups" {
		t.Errorf("options = %+v", o)
	}
	if o.ActivatorService != "" {
		t.Errorf("wake on access is on without a wake secret: %+v", o)
	}
	o, err = KubeOptions(read(t, map[string]string{"HYPERBOLA_WAKE_SECRET": strings.Repeat("k", activator.MinSecret),
		"HYPERBOLA_ACTIVATOR_HOST": "api.example.run.app"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.ActivatorService != "hyperbola-activator" || o.ActivatorHost != "api.example.run.app" || o.ActivatorPort != 443 {
		t.Errorf("wake on access options = %+v", o)
	}
	if _, err := KubeOptions(read(t, map[string]string{"HYPERBOLA_NODE_SELECTOR": "=x"})); err == nil {
		t.Error("a bad node selector was accepted")
	}
	o, err = KubeOptions(read(t, map[string]string{"HYPERBOLA_DNS_POD_LABELS": "app=coredns",
		"HYPERBOLA_DNS_CIDRS": "169.254.20.10/32", "HYPERBOLA_PROBE_SOURCE_CIDRS": "10.8.0.0/28"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.DNSNamespace != "kube-system" || o.DNSPodLabels["app"] != "coredns" || o.DNSCIDRs[0] != "169.254.20.10/32" || o.ProbeSourceCIDRs[0] != "10.8.0.0/28" {
		t.Errorf("network policy options = %+v", o)
	}
	if _, err := KubeOptions(read(t, map[string]string{"HYPERBOLA_DNS_POD_LABELS": "k8s-app"})); err == nil || !strings.Contains(err.Error(), "HYPERBOLA_DNS_POD_LABELS") {
		t.Errorf("bad DNS pod labels: %v", err)
	}
}

// The readiness interval and the budgets reach the cluster adapter and the clients; "off"
// is a negative interval, which the adapter takes as off.
func TestReadinessIntervalAndBudgets(t *testing.T) {
	o, err := KubeOptions(read(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	b := KubeBudgets(read(t, nil))
	if o.ReadinessInterval != kube.DefaultReadinessInterval || b != (kube.Budgets{Write: kube.DefaultWriteBudget, Read: kube.DefaultReadBudget}) {
		t.Errorf("defaults: interval %v, budgets %+v", o.ReadinessInterval, b)
	}
	cfg := read(t, map[string]string{"HYPERBOLA_READINESS_INTERVAL": "off", "HYPERBOLA_KUBE_READ_QPS": "7", "HYPERBOLA_KUBE_READ_BURST": "9"})
	if o, err = KubeOptions(cfg); err != nil || o.ReadinessInterval >= 0 {
		t.Errorf("off: interval %v, %v", o.ReadinessInterval, err)
	}
	if b := KubeBudgets(cfg); b.Read != (kube.Budget{QPS: 7, Burst: 9}) || b.Write != kube.DefaultWriteBudget {
		t.Errorf("budgets %+v", b)
	}
}

// A waiting status call reads at the rounds' interval (each read joins the next round); with
// the rounds off, every 100ms.
func TestAwaitInterval(t *testing.T) {
	for env, want := range map[string]time.Duration{"": kube.DefaultReadinessInterval, "10ms": 10 * time.Millisecond, "off": 100 * time.Millisecond} {
		vars := map[string]string{}
		if env != "" {
			vars["HYPERBOLA_READINESS_INTERVAL"] = env
		}
		if got := session.NewService(nil, nil, serviceOptions(read(t, vars))).Options().AwaitInterval; got != want {
			t.Errorf("HYPERBOLA_READINESS_INTERVAL=%q: Await reads every %v, want %v", env, got, want)
		}
	}
}

func TestSweepOptions(t *testing.T) {
	o := SweepOptions(read(t, nil))
	if o.ProbeURL != "" || o.ReconcileEvery != 10*time.Minute || o.Domain != "preview.hyperbola.in" {
		t.Fatalf("defaults: %+v", o)
	}
	s := newStack(t, nil).Sweeper()
	if s.Err() != nil || s.Options().ProbeURL != sweep.DefaultProbeURL {
		t.Fatalf("default probe URL: %q %v", s.Options().ProbeURL, s.Err())
	}
	o = SweepOptions(read(t, map[string]string{
		"HYPERBOLA_SWEEP_PROBE_URL": sweep.PublicProbeURL, "HYPERBOLA_DOMAIN": "ws.example.test",
		"HYPERBOLA_RECONCILE_EVERY": "0", "HYPERBOLA_RECONCILE_GRACE": "30m",
	}))
	if o.ProbeURL != sweep.PublicProbeURL {
		t.Fatalf("set: %+v", o)
	}
	p, err := sweep.NewHTTPProber(sweep.ProbeOptions{URLTemplate: o.ProbeURL, Namespace: o.Namespace, Port: o.Port, Domain: o.Domain})
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := p.URL("ab12cd34"); u != "https://vs-code-ab12cd34.ws.example.test/healthz" {
		t.Fatalf("public probe URL %q", u)
	}
	// the pod's address: the stack gives the sweep its cluster adapter to list the pods
	if err := newStack(t, map[string]string{"HYPERBOLA_SWEEP_PROBE_URL": sweep.PodProbeURL}).Sweeper().Err(); err != nil {
		t.Fatalf("pod IP probe URL: %v", err)
	}
	bad := newStack(t, map[string]string{"HYPERBOLA_SWEEP_PROBE_URL": "https://vs-code.example.test/healthz"}).Sweeper()
	if bad.Err() == nil {
		t.Fatal("a template without {id} was accepted")
	}
	ro := ReconcileOptions(read(t, map[string]string{"HYPERBOLA_RECONCILE_GRACE": "30m", "SESSION_TTL": "3600"}))
	if ro.GracePeriod != 30*time.Minute || ro.SessionTTL != time.Hour || ro.IdleTimeout != 15*time.Minute || ro.IdleConnectedMax != 2*time.Hour ||
		ro.Domain != "preview.hyperbola.in" {
		t.Fatalf("reconcile options %+v", ro)
	}
	for _, env := range []map[string]string{
		{"HYPERBOLA_RECONCILE_GRACE": "0s"}, {"HYPERBOLA_RECONCILE_EVERY": "-1m"}, {"HYPERBOLA_RECONCILE_EVERY": "often"},
	} {
		if _, err := config.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err == nil {
			t.Errorf("accepted %v", env)
		}
	}
}

// TestSweeperReconcileOff: HYPERBOLA_RECONCILE_EVERY=0 leaves the sweep without a reconciler,
// so it runs none; the default runs one.
func TestSweeperReconcileOff(t *testing.T) {
	for every, want := range map[string]bool{"0": false, "": true} {
		st := newStack(t, map[string]string{"HYPERBOLA_RECONCILE_EVERY": every})
		rep, err := st.Sweeper().Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Reconciled != nil; got != want {
			t.Errorf("HYPERBOLA_RECONCILE_EVERY=%q: reconciled %v, want %v (%+v)", every, got, want, rep)
		}
	}
}

// TestHandlers: the API and the sweep are served, each checking its callers; the API's
// options come from the configuration (a bad trusted proxy fails the build).
func TestHandlers(t *testing.T) {
	st := newStack(t, map[string]string{"API_KEY": "k1"})
	h, err := st.Handlers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		h      http.Handler
		method string
		path   string
		want   int
	}{
		{h.API, http.MethodGet, "/sessions", http.StatusUnauthorized},
		{h.API, http.MethodPost, "/sweep", http.StatusUnauthorized},
		{h.Sweep, http.MethodPost, "/", http.StatusUnauthorized},
		{h.Sweep, http.MethodGet, "/", http.StatusMethodNotAllowed},
	} {
		w := httptest.NewRecorder()
		c.h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.want)
		}
	}
	if _, err := newStack(t, map[string]string{"HYPERBOLA_TRUSTED_PROXIES": "not-a-cidr"}).Handlers(context.Background()); err == nil {
		t.Error("a bad trusted proxy was accepted")
	}
}

// TestWakeOnAccess: with a wake secret the API sends workspace hosts to the activator.
func TestWakeOnAccess(t *testing.T) {
	for secret, on := range map[string]bool{"": false, strings.Repeat("s", activator.MinSecret): true} {
		st := newStack(t, map[string]string{"HYPERBOLA_WAKE_SECRET": secret, "HYPERBOLA_DOMAIN": "ws.example.test"})
		act, err := st.activator()
		if err != nil || (act != nil) != on {
			t.Fatalf("secret %q: activator %v, %v", secret, act, err)
		}
	}
	short := newStack(t, map[string]string{"HYPERBOLA_WAKE_SECRET": "too-short"})
	if _, err := short.Handlers(context.Background()); err == nil || !strings.Contains(err.Error(), "HYPERBOLA_WAKE_SECRET") {
		t.Fatalf("a short wake secret: %v", err)
	}
}

// TestNoFirestoreMeansNoRecorder: without GOOGLE_CLOUD_PROJECT every part gets no durable
// record at all (a nil interface, never one holding a nil *events.Recorder).
func TestNoFirestoreMeansNoRecorder(t *testing.T) {
	d := newStack(t, nil).durable()
	if d.records != nil || d.flusher != nil || d.usage != nil {
		t.Fatalf("durable parts without Firestore: %+v", d)
	}
}

// HYPERBOLA_BACKUP_RETENTION=0 keeps archives forever; the session core reads 0 as its
// default, so the stack hands it a negative retention.
func TestBackupRetention(t *testing.T) {
	for env, want := range map[string]time.Duration{"": session.DefaultBackupRetention, "7d": 7 * 24 * time.Hour, "0": -1} {
		vars := map[string]string{}
		if env != "" {
			vars["HYPERBOLA_BACKUP_RETENTION"] = env
		}
		got := session.NewService(nil, nil, serviceOptions(read(t, vars))).Options().BackupRetention
		if got != want {
			t.Errorf("HYPERBOLA_BACKUP_RETENTION=%q: the core keeps archives %v, want %v", env, got, want)
		}
	}
}

// HYPERBOLA_IDLE_CONNECTED_MAX reaches the session core: 2h by default, 0 no cap.
func TestIdleConnectedMaxOption(t *testing.T) {
	for env, want := range map[string]time.Duration{"": session.DefaultIdleConnectedMax, "4h": 4 * time.Hour, "0": 0} {
		vars := map[string]string{}
		if env != "" {
			vars["HYPERBOLA_IDLE_CONNECTED_MAX"] = env
		}
		if got := session.NewService(nil, nil, serviceOptions(read(t, vars))).Options().IdleConnectedMax; got != want {
			t.Errorf("HYPERBOLA_IDLE_CONNECTED_MAX=%q: the core caps at %v, want %v", env, got, want)
		}
	}
}

// The warm path is off by default; on, a placeholder is a workspace made with the defaults.
func TestKubeOptionsWarmPath(t *testing.T) {
	o, err := KubeOptions(read(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.WarmPlaceholders != 0 || o.WarmPrepull {
		t.Errorf("warm path on by default: %+v", o)
	}
	o, err = KubeOptions(read(t, map[string]string{"HYPERBOLA_WARM_PLACEHOLDERS": "3", "HYPERBOLA_WARM_PREPULL": "true",
		"HYPERBOLA_CPU_REQUEST": "500m", "HYPERBOLA_MEMORY_REQUEST": "1Gi", "USER_POD_IMAGE": "codercom/code-server:4.96.4"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.WarmPlaceholders != 3 || !o.WarmPrepull || o.PlaceholderPriorityClass != "hyperbola-placeholder" ||
		o.WorkspaceImage != "codercom/code-server:4.96.4" || o.WorkspaceCPU.String() != "500m" || o.WorkspaceMemory.String() != "1Gi" {
		t.Errorf("warm options = %+v", o)
	}
}

func TestKubeOptionsRouting(t *testing.T) {
	o, err := KubeOptions(read(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.Routing != kube.RoutingIngress || o.KeepIngress {
		t.Errorf("default routing: %+v", o)
	}
	o, err = KubeOptions(read(t, map[string]string{"HYPERBOLA_ROUTING": "gateway", "HYPERBOLA_GATEWAY_CERTMAP": "wild",
		"HYPERBOLA_GATEWAY_ADDRESS": "gw-ip", "HYPERBOLA_KEEP_INGRESS": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.Routing != kube.RoutingGateway || o.GatewayName != "hyperbola" || o.GatewayNamespace != "hyperbola" ||
		o.GatewayClass != kube.DefaultGatewayClass || o.GatewayCertMap != "wild" || o.GatewayAddress != "gw-ip" ||
		!o.KeepIngress || len(o.GatewaySourceCIDRs) != 2 {
		t.Errorf("gateway options: %+v", o)
	}
	for env, v := range map[string]string{
		"HYPERBOLA_GATEWAY_NAME":      "Bad_Name",
		"HYPERBOLA_GATEWAY_NAMESPACE": "bad.ns",
		"HYPERBOLA_GATEWAY_CLASS":     "Bad Class",
		"HYPERBOLA_GATEWAY_ADDRESS":   "1.2.3.4",
	} {
		_, err := KubeOptions(read(t, map[string]string{"HYPERBOLA_ROUTING": "gateway", env: v}))
		if err == nil || !strings.HasPrefix(err.Error(), env+": ") {
			t.Errorf("%s=%q: %v, want an error naming the variable", env, v, err)
		}
	}
}
