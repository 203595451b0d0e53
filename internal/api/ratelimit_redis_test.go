package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/ratelimit"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// redisServer serves the API over real HTTP on 127.0.0.1 with the real limiter on a
// redis-server of its own (killed by the test when it wants Redis down), and a readiness check
// that pings that Redis. 127.0.0.1 is a trusted proxy, so X-Forwarded-For names the client.
func redisServer(t *testing.T, opts Options) (*httptest.Server, *testenv.Redis, *testClock) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	rs, err := testenv.StartRedis(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Stop)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	ts := newBareServer()
	clock := &testClock{t: sessiontest.Epoch}
	opts.APIKeys = []string{testKey}
	opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	srv := httptest.NewServer(New(Deps{Manager: manager{ts.spy}, Limiter: ratelimit.New(rdb, "t:"), Now: clock.Now,
		Health: HealthFunc(func(ctx context.Context) map[string]error {
			return map[string]error{"redis": rdb.Ping(ctx).Err()}
		}), Logger: slog.New(slog.DiscardHandler)}, opts))
	t.Cleanup(srv.Close)
	return srv, rs, clock
}

// answer is one response: its status, headers and error code.
type answer struct {
	code   int
	header http.Header
	err    string
}

func get(t *testing.T, srv *httptest.Server, path, key, from string) answer {
	t.Helper()
	r, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		r.Header.Set(HeaderAPIKey, key)
	}
	if from != "" {
		r.Header.Set("X-Forwarded-For", from)
	}
	res, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var e wire.ErrorBody
	_ = json.Unmarshal(b, &e)
	return answer{code: res.StatusCode, header: res.Header, err: e.Error.Code}
}

// TestFailedKeysLimitedPerIP, over real HTTP on a real redis-server: an address that sends
// more than AuthFailLimit requests without a valid key a minute gets 429 with Retry-After and
// the JSON error; a valid key from it is still accepted, and another address still gets 401.
// With Redis down a bad key is still a 401 (the budget fails open).
func TestFailedKeysLimitedPerIP(t *testing.T) {
	srv, rs, _ := redisServer(t, Options{AuthFailLimit: 3})
	const attacker, other = "198.51.100.7", "203.0.113.9"
	for i, key := range []string{"guess-1", "", "guess-3"} {
		if a := get(t, srv, "/sessions", key, attacker); a.code != 401 || a.err != "unauthenticated" {
			t.Fatalf("failure %d: %+v", i+1, a)
		}
	}
	for _, key := range []string{"guess-4", ""} {
		a := get(t, srv, "/sessions", key, attacker)
		if a.code != 429 || a.err != "rate_limited" || a.header.Get("Retry-After") == "" || a.header.Get("RateLimit-Limit") != "3" {
			t.Fatalf("over the budget with %q: %+v", key, a)
		}
	}
	if a := get(t, srv, "/sessions", testKey, attacker); a.code != 200 {
		t.Fatalf("a valid key from the same address: %+v", a)
	}
	if a := get(t, srv, "/sessions", "guess-5", other); a.code != 401 {
		t.Fatalf("another address: %+v", a)
	}
	rs.Kill()
	if a := get(t, srv, "/sessions", "guess-6", attacker); a.code != 401 {
		t.Fatalf("a bad key with Redis down: %+v", a)
	}
	if a := get(t, srv, "/sessions", testKey, attacker); a.code != 503 {
		t.Fatalf("a valid key with Redis down (its route's limit fails closed): %+v", a)
	}
}

// TestProbesLimitedPerIP, over real HTTP on a real redis-server: /health and /ready each
// admit ProbeLimit requests a minute per address, but for a trusted proxy's own (the
// platform's probes); with Redis down /health is still 200 and
// /ready answers 503 naming redis, never the limiter's failure.
func TestProbesLimitedPerIP(t *testing.T) {
	srv, rs, clock := redisServer(t, Options{ProbeLimit: 2})
	const prober = "198.51.100.8"
	for _, path := range []string{"/health", "/ready"} {
		for i := range 2 {
			if a := get(t, srv, path, "", prober); a.code != 200 {
				t.Fatalf("%s %d: %+v", path, i, a)
			}
		}
		if a := get(t, srv, path, "", prober); a.code != 429 || a.err != "rate_limited" || a.header.Get("Retry-After") == "" {
			t.Fatalf("%s over the limit: %+v", path, a)
		}
	}
	if a := get(t, srv, "/health", "", "203.0.113.10"); a.code != 200 {
		t.Fatalf("another address: %+v", a)
	}
	// the platform's probes come from a trusted proxy's own address: never limited
	for i := range 4 {
		if a := get(t, srv, "/health", "", ""); a.code != 200 || a.header.Get("RateLimit-Limit") != "" {
			t.Fatalf("a probe from the proxy itself, %d: %+v", i, a)
		}
	}
	rs.Kill()
	clock.Add(DefaultReadyCacheTTL) // the cached answer is stale
	for range 3 {
		if a := get(t, srv, "/health", "", prober); a.code != 200 {
			t.Fatalf("liveness with Redis down: %+v", a)
		}
	}
	if a := get(t, srv, "/ready", "", prober); a.code != 503 || a.err != "unavailable" || a.header.Get("Retry-After") != "5" {
		t.Fatalf("readiness with Redis down: %+v", a)
	}
}

// TestReadRoutesDecideInTheirRead, over real HTTP on a real redis-server with the real store
// and session core: status and list take their key's rate-limit decision in the round trip
// of their read (one trip a request, not two); over the limit they answer 429 with the
// headers and read nothing more; a request whose handler reads nothing (a bad id) is counted
// all the same; with Redis down they fail closed (503).
func TestReadRoutesDecideInTheirRead(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	rs, err := testenv.StartRedis(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Stop)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	quiet := slog.New(slog.DiscardHandler)
	st := store.New(rdb, "t:", store.Options{Logger: quiet})
	cluster := sessiontest.NewCluster(nil)
	cluster.SetAutoReady(true)
	svc := session.NewService(cluster, st, session.Options{Domain: "example.test", Logger: quiet})
	sess, err := svc.Create(t.Context(), session.CreateRequest{UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(t.Context(), sess.ID); err != nil { // running: status reads only
		t.Fatal(err)
	}
	if _, err := svc.List(t.Context(), session.ListOptions{UserID: "u1"}); err != nil { // the list script loaded
		t.Fatal(err)
	}
	const limit = 4
	srv := httptest.NewServer(New(Deps{Manager: svc, Limiter: ratelimit.New(rdb, "t:"), LimitRidesReads: true, Logger: quiet},
		Options{APIKeys: []string{testKey}, KeyLimit: limit}))
	t.Cleanup(srv.Close)
	trips := store.NewRoundTrips()
	rdb.AddHook(trips)

	status, list := "/session/"+sess.ID+"/status", "/sessions?user_id=u1"
	for i, path := range []string{status, list, status} {
		trips.Reset()
		a := get(t, srv, path, testKey, "")
		if a.code != 200 || a.header.Get("RateLimit-Limit") != "4" || a.header.Get("RateLimit-Remaining") != strconv.Itoa(limit-1-i) {
			t.Fatalf("request %d (%s): %+v", i+1, path, a)
		}
		if n := trips.Trips(); i > 0 && n != 1 { // the first loads the limit's script
			t.Fatalf("request %d (%s): %d Redis round trips, want 1", i+1, path, n)
		}
	}
	if a := get(t, srv, "/session/not-an-id/status", testKey, ""); a.code != 400 {
		t.Fatalf("a bad id: %+v", a)
	}
	for _, path := range []string{status, list} {
		trips.Reset()
		a := get(t, srv, path, testKey, "")
		if a.code != 429 || a.err != "rate_limited" || a.header.Get("Retry-After") == "" || a.header.Get("RateLimit-Remaining") != "0" {
			t.Fatalf("%s over the limit (the bad id counted): %+v", path, a)
		}
		if n := trips.Trips(); n != 1 {
			t.Fatalf("%s refused after %d round trips, want 1", path, n)
		}
	}
	rs.Kill()
	for _, path := range []string{status, list} {
		if a := get(t, srv, path, testKey, ""); a.code != 503 {
			t.Fatalf("%s with Redis down: %+v, want 503 (the limit fails closed)", path, a)
		}
	}
}
