package activator_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activator"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/devingress"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/ratelimit"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

// The tests' workspaces run on kwok's fake nodes, but the real IDE's (realide_test.go), which
// runs code-server on the real node: started on demand, by that test, so the package holds the
// machine's one real node only for it.
func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Cluster: true, Redis: true, RealNodeOnDemand: true})
}

const (
	domain = "ws.test"
	secret = "integration-wake-secret-0123456789abcdef"
)

// fixture is one test's control plane on the package's cluster and redis-server: the real
// session Service, the real cluster adapter (its Password reads the Secret), the real Redis
// rate limiter, and the activator served over HTTP.
type fixture struct {
	t       *testing.T
	ns      string
	domain  string // the workspaces' domain
	kube    *testenv.Kube
	cluster *kube.Cluster
	store   *store.Store
	svc     *session.Service
	act     *activator.Handler
	srv     *httptest.Server
	// routing is what routes a workspace's host (devingress.RoutingIngress when empty), as
	// the test configured the control plane: the local entry point follows the same objects.
	routing string
}

func newFixture(t testing.TB, mutate func(*activator.Options)) *fixture {
	t.Helper()
	return newFixtureWith(t, nil, mutate)
}

// newFixtureWith is newFixture with other settings of the control plane: settings adjusts
// the cluster adapter's options (e.g. the real node's placement; the Service's domain is
// theirs) and the Service's (e.g. the image); the backup claim is made in their storage class.
// Settings that select the real node put the test's namespace on the package's on-demand
// real-node cluster.
func newFixtureWith(t testing.TB, settings func(*kube.Options, *session.Options), mutate func(*activator.Options)) *fixture {
	t.Helper()
	rdb, prefix := env.RedisFor(t)
	ctx := context.Background()
	// the configuration's defaults, with wake on access on (a wake secret and the activator
	// Service hyperbola-activator)
	ko := kube.Options{Domain: domain, Port: 8080, IngressClass: "nginx", ClusterIssuer: "letsencrypt",
		IngressNamespace: "ingress-nginx",
		BackupPVC:        "hyperbola-backups", BackupImage: "localhost/hyperbola-backup:1",
		BackupDeadline: 30 * time.Minute, ActivatorService: "hyperbola-activator", ActivatorPort: 80}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	so := session.Options{Logger: logger}
	if settings != nil {
		settings(&ko, &so)
	}
	so.Domain = ko.Domain
	namespace := env.Namespace
	if _, real := ko.NodeSelector[testenv.RealNodeLabel]; real {
		namespace = env.RealNodeNamespace
	}
	k, ns := namespace(t)
	ko.Namespace = ns
	if err := ko.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := k.CreateBackupPVCOn(ctx, ns, ko.BackupPVC, ko.StorageClass); err != nil {
		t.Fatal(err)
	}
	// the clients a deployment's control plane builds from its REST config (the Gateway API's
	// among them, for gateway mode), with the test cluster's generous budgets
	clients, err := kube.NewClients(k.Config, kube.Budgets{Write: kube.Budget{QPS: 500, Burst: 1000}, Read: kube.Budget{QPS: 500, Burst: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	cluster := kube.NewClusterFromClients(clients, ko)
	st := store.New(rdb, prefix, store.Options{TombstoneTTL: 24 * time.Hour, Logger: logger, Now: so.Now})
	svc := session.NewService(cluster, st, so)
	opts := activator.Options{Domain: ko.Domain, Secret: []byte(secret),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Scheme:         "http", PollInterval: 200 * time.Millisecond}
	if mutate != nil {
		mutate(&opts)
	}
	act, err := activator.New(activator.Deps{
		Sessions: svc, Passwords: cluster, Limiter: ratelimit.New(rdb, prefix), Logger: logger,
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(act)
	t.Cleanup(srv.Close)
	tt, _ := t.(*testing.T)
	return &fixture{t: tt, ns: ns, domain: ko.Domain, kube: k, cluster: cluster, store: st, svc: svc, act: act, srv: srv}
}

// asleep creates a workspace asleep and returns it (with its password).
func (f *fixture) asleep(t testing.TB) *session.Session {
	t.Helper()
	s, err := f.svc.Create(context.Background(), session.CreateRequest{UserID: "owner@example.com", State: session.StateSleeping})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// request is one request to the activator for the session's host, as the browser makes it.
type request struct {
	method, path string
	form         url.Values
	cookies      []*http.Cookie
	header       map[string]string
}

// reply is one of the activator's answers, its body read (and closed) by do.
type reply struct {
	*http.Response
	body string
}

func (f *fixture) do(t testing.TB, id string, rq request) reply {
	t.Helper()
	var body io.Reader
	if rq.form != nil {
		body = strings.NewReader(rq.form.Encode())
	}
	if rq.method == "" {
		rq.method = http.MethodGet
	}
	req, err := http.NewRequest(rq.method, f.srv.URL+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "vs-code-" + id + "." + domain
	if rq.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	for _, c := range rq.cookies {
		req.AddCookie(c)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{Response: resp, body: string(b)}
}

func bodyOf(r reply) string { return r.body }

func wakeCookie(r reply) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == activator.CookieName("http", activator.WakeCookie) {
			return c
		}
	}
	return nil
}

func (f *fixture) replicas(t testing.TB, id string) int32 {
	t.Helper()
	d, err := f.kube.Client.AppsV1().Deployments(f.ns).Get(context.Background(), "vs-code-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// backend is the service the workspace's Ingress (or HTTPRoute) sends its host to.
func (f *fixture) backend(t testing.TB, id string) string {
	t.Helper()
	if f.routing == devingress.RoutingGateway {
		return f.routeBackend(t, id)
	}
	ing, err := f.kube.Client.NetworkingV1().Ingresses(f.ns).Get(context.Background(), "vs-code-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name
}

func (f *fixture) state(t testing.TB, id string) session.State {
	t.Helper()
	s, err := f.store.Get(context.Background(), id) // the record, without driving anything
	if err != nil {
		t.Fatal(err)
	}
	return s.State
}

// stillAsleep checks that nothing woke session id.
func (f *fixture) stillAsleep(t testing.TB, id, after string) {
	t.Helper()
	if r := f.replicas(t, id); r != 0 {
		t.Fatalf("%s: replicas %d, want 0", after, r)
	}
	if st := f.state(t, id); st != session.StateSleeping {
		t.Fatalf("%s: session %s, want sleeping", after, st)
	}
}

// pollReady polls the status endpoint (as the waking page does) until the workspace is ready.
func (f *fixture) pollReady(t testing.TB, id string, c *http.Cookie, every time.Duration) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r := f.do(t, id, request{path: activator.StatusPath, cookies: []*http.Cookie{c}})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("status: %d %s", r.StatusCode, bodyOf(r))
		}
		var st activator.Status
		if err := json.Unmarshal([]byte(bodyOf(r)), &st); err != nil {
			t.Fatal(err)
		}
		if st.Ready {
			return
		}
		time.Sleep(every)
	}
	t.Fatalf("session %s never became ready", id)
}

func TestIntegrationWakeLinkWakesTheWorkspace(t *testing.T) {
	f := newFixture(t, nil)
	s := f.asleep(t)
	if b := f.backend(t, s.ID); b != "hyperbola-activator" {
		t.Fatalf("a sleeping workspace's Ingress goes to %s", b)
	}
	link, _ := url.Parse(activator.WakeLink(s.WorkspaceURL, []byte(secret), s.ID, time.Now().Add(time.Hour)))

	r := f.do(t, s.ID, request{path: link.RequestURI()})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "http://vs-code-"+s.ID+"."+domain+"/" {
		t.Fatalf("wake link: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	c := wakeCookie(r)
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Fatalf("wake cookie %+v", c)
	}
	if n := f.replicas(t, s.ID); n != 1 {
		t.Fatalf("replicas after the wake link: %d", n)
	}
	// the redirect's target, with the cookie: the waking page (or the IDE already)
	r = f.do(t, s.ID, request{path: "/", cookies: []*http.Cookie{c}})
	switch r.StatusCode {
	case http.StatusOK:
		if !strings.Contains(bodyOf(r), "Waking your workspace") {
			t.Fatalf("waking page:\n%s", bodyOf(r))
		}
	case http.StatusSeeOther: // kwok made the pod ready already
	default:
		t.Fatalf("after the link: %d", r.StatusCode)
	}
	f.pollReady(t, s.ID, c, 50*time.Millisecond)
	if st := f.state(t, s.ID); st != session.StateRunning {
		t.Fatalf("ready, but the session is %s", st)
	}
	if b := f.backend(t, s.ID); b != "vs-code-"+s.ID {
		t.Fatalf("running, the Ingress goes to %s", b)
	}
	// a request that still reaches the activator (the switch lagging) goes to the IDE
	r = f.do(t, s.ID, request{path: "/?folder=/app", cookies: []*http.Cookie{c}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "http://vs-code-"+s.ID+"."+domain+"/?folder=/app" {
		t.Fatalf("running: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestIntegrationNoProofNoWake(t *testing.T) {
	f := newFixture(t, nil)
	s := f.asleep(t)
	other := f.asleep(t)
	now := time.Now()
	sign := func(id string, exp time.Time) string {
		return "/?" + activator.LinkParam + "=" + url.QueryEscape(activator.SignLink([]byte(secret), id, exp))
	}
	for name, rq := range map[string]request{
		"no proof":               {path: "/"},
		"a cookie of nothing":    {path: "/", cookies: []*http.Cookie{{Name: activator.CookieName("http", activator.WakeCookie), Value: "1999999999.AAAA"}}},
		"another secret's link":  {path: "/?" + activator.LinkParam + "=" + url.QueryEscape(activator.SignLink([]byte("not-the-secret-not-the-secret-000"), s.ID, now.Add(time.Hour)))},
		"another session's link": {path: sign(other.ID, now.Add(time.Hour))},
		"an expired link":        {path: sign(s.ID, now.Add(-time.Minute))},
		"a link over 24h":        {path: sign(s.ID, now.Add(30*time.Hour))},
		"a tampered link":        {path: sign(s.ID, now.Add(time.Hour)) + "A"},
		"the IDE's websocket":    {path: "/", header: map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}},
	} {
		r := f.do(t, s.ID, rq)
		if r.StatusCode/100 == 3 || wakeCookie(r) != nil {
			t.Errorf("%s: %d, cookie %v", name, r.StatusCode, wakeCookie(r))
		}
		f.stillAsleep(t, s.ID, name)
	}
	// the asleep page asks for the password; a refused link says why
	if b := bodyOf(f.do(t, s.ID, request{path: "/"})); !strings.Contains(b, "This workspace is asleep") || !strings.Contains(b, `type="password"`) {
		t.Errorf("asleep page:\n%s", b)
	}
	if r := f.do(t, s.ID, request{path: sign(s.ID, now.Add(-time.Minute))}); r.StatusCode != http.StatusForbidden {
		t.Errorf("expired link: %d", r.StatusCode)
	}
	// another session's valid cookie is no proof here
	link, _ := url.Parse(activator.WakeLink(other.WorkspaceURL, []byte(secret), other.ID, now.Add(time.Hour)))
	c := wakeCookie(f.do(t, other.ID, request{path: link.RequestURI()}))
	if c == nil {
		t.Fatal("no cookie for the other session")
	}
	f.do(t, s.ID, request{path: "/", cookies: []*http.Cookie{c}})
	f.stillAsleep(t, s.ID, "another session's cookie")
	if r := f.do(t, s.ID, request{path: activator.StatusPath, cookies: []*http.Cookie{c}}); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("status with another session's cookie: %d", r.StatusCode)
	}
	// unknown sessions and hosts
	if r := f.do(t, "zz99zz99", request{path: "/"}); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown session: %d", r.StatusCode)
	}
}

func TestIntegrationPasswordWakes(t *testing.T) {
	f := newFixture(t, nil)
	s := f.asleep(t)
	r := f.do(t, s.ID, request{method: "POST", path: activator.WakePath, form: url.Values{"password": {"not-the-password"}, "return": {"/"}}})
	if r.StatusCode != http.StatusUnauthorized || wakeCookie(r) != nil {
		t.Fatalf("wrong password: %d", r.StatusCode)
	}
	f.stillAsleep(t, s.ID, "a wrong password")

	r = f.do(t, s.ID, request{method: "POST", path: activator.WakePath, form: url.Values{"password": {s.Password}, "return": {"/?folder=/app"}}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "http://vs-code-"+s.ID+"."+domain+"/?folder=/app" {
		t.Fatalf("password: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	c := wakeCookie(r)
	if c == nil {
		t.Fatal("no wake cookie after the password")
	}
	if n := f.replicas(t, s.ID); n != 1 {
		t.Fatalf("replicas after the password: %d", n)
	}
	f.pollReady(t, s.ID, c, 50*time.Millisecond)

	// asleep again, the cookie alone wakes it (reloads work without the password)
	if _, err := f.svc.Sleep(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	f.stillAsleep(t, s.ID, "sleep")
	if r := f.do(t, s.ID, request{path: "/", cookies: []*http.Cookie{c}}); r.StatusCode != http.StatusOK {
		t.Fatalf("cookie: %d", r.StatusCode)
	}
	if n := f.replicas(t, s.ID); n != 1 {
		t.Fatalf("replicas after the cookie: %d", n)
	}

	// a browser that logged in to the IDE before carries code-server's cookie (an argon2 hash
	// of the password in the session's Secret): that is proof too
	f.pollReady(t, s.ID, c, 50*time.Millisecond)
	if _, err := f.svc.Sleep(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	wrong := &http.Cookie{Name: activator.CodeServerCookie, Value: url.QueryEscape(argonPHC("not-the-password"))}
	if r := f.do(t, s.ID, request{path: "/", cookies: []*http.Cookie{wrong}}); r.StatusCode != http.StatusOK || wakeCookie(r) != nil {
		t.Fatalf("a wrong code-server cookie: %d", r.StatusCode)
	}
	f.stillAsleep(t, s.ID, "a wrong code-server cookie")
	right := &http.Cookie{Name: activator.CodeServerCookie, Value: url.QueryEscape(argonPHC(s.Password))}
	if r := f.do(t, s.ID, request{path: "/", cookies: []*http.Cookie{right}}); r.StatusCode != http.StatusOK || wakeCookie(r) == nil {
		t.Fatalf("code-server's cookie: %d", r.StatusCode)
	}
	if n := f.replicas(t, s.ID); n != 1 {
		t.Fatalf("replicas after code-server's cookie: %d", n)
	}
}

// argonPHC hashes pw the way code-server's login cookie holds it: argon2id with node-argon2's
// defaults (the only parameters the activator takes), a 16-byte salt, a PHC string.
func argonPHC(pw string) string {
	salt := []byte("saltsaltsaltsalt")
	key := argon2.IDKey([]byte(pw), salt, 3, 64*1024, 4, 32)
	return "$argon2id$v=19$m=65536,t=3,p=4$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
}

func TestIntegrationRateLimits(t *testing.T) {
	f := newFixture(t, func(o *activator.Options) { o.RequestsPerIP = 5; o.WakesPerSession = 1 })
	s := f.asleep(t)
	for i := range 5 {
		if r := f.do(t, s.ID, request{path: "/"}); r.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, r.StatusCode)
		}
	}
	r := f.do(t, s.ID, request{path: "/"})
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("over the per-IP limit: %d %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	t.Logf("429, Retry-After %s", r.Header.Get("Retry-After"))

	// the per-session wake limit, from other addresses (X-Forwarded-For from a trusted peer)
	g := newFixture(t, func(o *activator.Options) {
		o.WakesPerSession = 1
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	s = g.asleep(t)
	link, _ := url.Parse(activator.WakeLink(s.WorkspaceURL, []byte(secret), s.ID, time.Now().Add(time.Hour)))
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	r = g.do(t, s.ID, request{path: link.RequestURI(), header: from("198.51.100.1")})
	if r.StatusCode != http.StatusSeeOther || wakeCookie(r) == nil {
		t.Fatalf("first wake: %d", r.StatusCode)
	}
	g.pollReady(t, s.ID, wakeCookie(r), 50*time.Millisecond)
	if _, err := g.svc.Sleep(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	r = g.do(t, s.ID, request{path: link.RequestURI(), header: from("198.51.100.2")})
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second wake within the minute: %d", r.StatusCode)
	}
	g.stillAsleep(t, s.ID, "the per-session limit")
}

// Over the real limiter in Redis: a stranger who spends its address's password budget spends
// nothing of the session's, and the owner, from another address, wakes the workspace.
func TestIntegrationStrangerDoesNotLockOutTheOwner(t *testing.T) {
	f := newFixture(t, func(o *activator.Options) {
		o.PasswordsPerIP, o.PasswordsPerSession = 3, 4
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	s := f.asleep(t)
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	guess := url.Values{"password": {"not-the-password"}, "return": {"/"}}
	for i := range 8 {
		want := http.StatusUnauthorized
		if i >= 3 {
			want = http.StatusTooManyRequests
		}
		if r := f.do(t, s.ID, request{method: "POST", path: activator.WakePath, form: guess, header: from("198.51.100.66")}); r.StatusCode != want {
			t.Fatalf("stranger's guess %d: %d, want %d", i+1, r.StatusCode, want)
		}
	}
	f.stillAsleep(t, s.ID, "a stranger's guesses")
	r := f.do(t, s.ID, request{method: "POST", path: activator.WakePath, form: url.Values{"password": {s.Password}, "return": {"/"}},
		header: from("203.0.113.5")})
	if r.StatusCode != http.StatusSeeOther || wakeCookie(r) == nil {
		t.Fatalf("the owner from another address: %d", r.StatusCode)
	}
	f.pollReady(t, s.ID, wakeCookie(r), 50*time.Millisecond)
}
