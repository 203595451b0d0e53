package faults_test

// TEMPORARY until faults-cut merges: a minimal stand-in for internal/testenv/kubeproxy.go
// (testenv.StartKubeProxy, testenv.KubeProxy, testenv.FaultRule) and for
// (*testenv.Redis).Restart, so that load_test.go compiles and runs before that branch lands.
// Once it has, delete this file and run, in internal/faults:
//
//	sed -i -E 's/\b(StartKubeProxy|KubeProxy|FaultRule)\b/testenv.\1/g; s/restartRedis\(ctx, env\.Redis\)/env.Redis.Restart(ctx)/' load_test.go load_helpers_test.go
//
// The stand-in does not listen anywhere: it wraps the client's transport (the returned
// config's WrapTransport), which is all a client of the real proxy sees of it. Verbs are
// HTTP methods; an empty Verbs or PathContains matches every request.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"k8s.io/client-go/rest"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// FaultRule is testenv.FaultRule's stand-in.
type FaultRule struct {
	Name         string
	Verbs        []string
	PathContains string
	Status       int
	Stall        time.Duration
	Every        int
	Probability  float64
	Limit        int
}

// KubeProxy is testenv.KubeProxy's stand-in.
type KubeProxy struct {
	mu       sync.Mutex
	rules    map[int]*shimRule
	next     int
	injected map[string]int
}

type shimRule struct {
	FaultRule
	seen, fired int
}

// StartKubeProxy is testenv.StartKubeProxy's stand-in.
func StartKubeProxy(t testing.TB, target *rest.Config) (*KubeProxy, *rest.Config) {
	t.Helper()
	p := &KubeProxy{rules: map[int]*shimRule{}, injected: map[string]int{}}
	cfg := rest.CopyConfig(target)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) { return p.roundTrip(rt, req) })
	}
	return p, cfg
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (p *KubeProxy) roundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	stall, status, name := p.decide(req)
	if stall > 0 {
		t := time.NewTimer(stall)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
	}
	if status != 0 {
		body := fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected by fault rule %s","reason":"InternalError","code":%d}`, name, status)
		return &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
	}
	return next.RoundTrip(req)
}

// decide picks the first matching rule that fires for req.
func (p *KubeProxy) decide(req *http.Request) (time.Duration, int, string) {
	if req.URL.Query().Get("watch") == "true" {
		return 0, 0, ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < p.next; i++ {
		r, ok := p.rules[i]
		if !ok {
			continue
		}
		if len(r.Verbs) > 0 && !containsFold(r.Verbs, req.Method) {
			continue
		}
		if r.PathContains != "" && !strings.Contains(req.URL.Path, r.PathContains) {
			continue
		}
		if r.Limit > 0 && r.fired >= r.Limit {
			continue
		}
		r.seen++
		if r.Every > 0 && r.seen%r.Every != 0 {
			continue
		}
		if r.Probability > 0 && rand.Float64() >= r.Probability {
			continue
		}
		r.fired++
		p.injected[r.Name]++
		return r.Stall, r.Status, r.Name
	}
	return 0, 0, ""
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// Add is (*testenv.KubeProxy).Add's stand-in.
func (p *KubeProxy) Add(r FaultRule) (remove func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.next
	p.next++
	p.rules[id] = &shimRule{FaultRule: r}
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.rules, id)
	}
}

// Injected is (*testenv.KubeProxy).Injected's stand-in.
func (p *KubeProxy) Injected() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.injected))
	for k, v := range p.injected {
		out[k] = v
	}
	return out
}

// Total is (*testenv.KubeProxy).Total's stand-in.
func (p *KubeProxy) Total() int {
	n := 0
	for _, v := range p.Injected() {
		n += v
	}
	return n
}

// restartRedis stands in for (*testenv.Redis).Restart: the package's redis-server keeps no
// data across a real restart until faults-cut makes it use an AOF, so this drops every
// client connection and pauses all clients for 2 s, which is what the clients see of a
// restart that keeps the data.
func restartRedis(ctx context.Context, r *testenv.Redis) error {
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer func() { _ = rdb.Close() }()
	if err := rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
		return fmt.Errorf("dropping redis clients: %w", err)
	}
	if err := rdb.Do(ctx, "CLIENT", "PAUSE", "2000", "ALL").Err(); err != nil {
		return fmt.Errorf("pausing redis clients: %w", err)
	}
	return nil
}
