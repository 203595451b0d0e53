package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// KubeProxy is an HTTP reverse proxy on 127.0.0.1 in front of the kube-apiserver that injects
// faults into chosen requests: an error answer instead of the call, or a stall before it.
//
// Watches and other streams (logs, exec, attach, port-forward) pass through untouched unless a
// rule names them (its PathContains holds "watch" or the stream's subresource): a fault there
// would test client-go's reflector, not the caller.
type KubeProxy struct {
	// URL is the proxy's address (http://127.0.0.1:port).
	URL string

	srv *http.Server

	mu       sync.Mutex
	rules    []*ruleState
	nextID   int
	injected map[string]int
	total    int
	dropped  int
	rnd      *rand.Rand
}

// FaultRule says which requests a KubeProxy acts on and what it does to them.
type FaultRule struct {
	Name         string        // counts are kept by name
	Verbs        []string      // HTTP methods ("GET", "POST", "PUT", "PATCH", "DELETE"); empty: any
	PathContains string        // substring of the URL path (e.g. "/persistentvolumeclaims", "/jobs", "/deployments/"); empty: any
	Status       int           // answer with this HTTP status and a Kubernetes Status JSON body instead of forwarding (0: forward)
	Stall        time.Duration // hold the request this long before acting; a client that gives up first is never forwarded (0: none)
	Every        int           // act on every Nth matching request (0 or 1: every one)
	Probability  float64       // act with this probability instead of Every (a seeded math/rand/v2 source)
	Limit        int           // act at most this many times (0: no limit)
}

type ruleState struct {
	FaultRule
	id      int
	matched int // matching requests seen
	acted   int
}

// StartKubeProxy starts a proxy to the API server that target reaches (the proxy
// authenticates with target's TLS/credentials); it returns the proxy and a rest.Config for
// clients that go through it (plain http to the proxy). t.Cleanup stops it.
func StartKubeProxy(t testing.TB, target *rest.Config) (*KubeProxy, *rest.Config) {
	t.Helper()
	p, cfg, err := startKubeProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p, cfg
}

func startKubeProxy(target *rest.Config) (*KubeProxy, *rest.Config, error) {
	upstream, err := url.Parse(target.Host)
	if err != nil {
		return nil, nil, fmt.Errorf("kube proxy: API server address %q: %w", target.Host, err)
	}
	if upstream.Scheme == "" { // rest.Config allows a bare host:port
		upstream, err = url.Parse("https://" + target.Host)
		if err != nil {
			return nil, nil, fmt.Errorf("kube proxy: API server address %q: %w", target.Host, err)
		}
	}
	transport, err := rest.TransportFor(target)
	if err != nil {
		return nil, nil, fmt.Errorf("kube proxy: transport to the API server: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("kube proxy: listening: %w", err)
	}
	p := &KubeProxy{
		URL:      "http://" + l.Addr().String(),
		injected: map[string]int{},
		// seeded: a run's faults fall the same way for the same sequence of requests
		rnd: rand.New(rand.NewPCG(0x6879706572, 0x626f6c61)),
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			// the client's credentials (none: it speaks plain http to us) never reach the
			// server; the transport adds the target's
			pr.Out.Header.Del("Authorization")
		},
		Transport: transport,
		// stream every byte as it comes: watches must see their events at once
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) || r.Context().Err() != nil {
				return // the client went away: nobody reads the answer
			}
			writeStatus(w, http.StatusBadGateway, "kube proxy: "+err.Error())
		},
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, rp) }),
		ReadHeaderTimeout: time.Minute,
	}
	go func() { _ = p.srv.Serve(l) }()
	cfg := &rest.Config{
		Host:      p.URL,
		QPS:       target.QPS,
		Burst:     target.Burst,
		Timeout:   target.Timeout,
		UserAgent: target.UserAgent,
	}
	return p, cfg, nil
}

func (p *KubeProxy) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx) // waits for short requests; watches are cut by Close below
	_ = p.srv.Close()
}

// Add adds a rule, acted on after the rules added before it (the first rule that acts on a
// request decides its fate); remove takes it away again (its counts stay).
func (p *KubeProxy) Add(r FaultRule) (remove func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	id := p.nextID
	p.rules = append(p.rules, &ruleState{FaultRule: r, id: id})
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.rules = slices.DeleteFunc(p.rules, func(s *ruleState) bool { return s.id == id })
	}
}

// Injected returns the faults acted on, by rule name.
func (p *KubeProxy) Injected() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.injected)
}

// Total returns the number of faults acted on, every rule together.
func (p *KubeProxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Dropped returns the number of stalled requests whose client gave up before the stall
// ended: they never reached the API server.
func (p *KubeProxy) Dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// serve acts on r as the first rule that chooses to, or forwards it.
func (p *KubeProxy) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rule, ok := p.choose(r)
	if !ok {
		next.ServeHTTP(w, r)
		return
	}
	if rule.Stall > 0 {
		// The server notices a client that goes away only once the request's body is read
		// to its end: read it now, so a cancelled request ends the stall.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		timer := time.NewTimer(rule.Stall)
		select {
		case <-r.Context().Done():
			timer.Stop()
			p.mu.Lock()
			p.dropped++
			p.mu.Unlock()
			return
		case <-timer.C:
		}
	}
	if rule.Status != 0 {
		writeStatus(w, rule.Status, fmt.Sprintf("injected fault %q: %s %s", rule.Name, r.Method, r.URL.Path))
		return
	}
	// forwarded with the client's context: a client that gives up now cancels the call
	next.ServeHTTP(w, r)
}

// choose returns the rule that acts on r, counting it.
func (p *KubeProxy) choose(r *http.Request) (FaultRule, bool) {
	stream := streamKind(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.rules {
		if len(s.Verbs) > 0 && !slices.ContainsFunc(s.Verbs, func(v string) bool { return strings.EqualFold(v, r.Method) }) {
			continue
		}
		if s.PathContains != "" && !strings.Contains(r.URL.Path, s.PathContains) {
			continue
		}
		if stream != "" && !strings.Contains(s.PathContains, stream) {
			continue
		}
		if s.Limit > 0 && s.acted >= s.Limit {
			continue
		}
		s.matched++
		switch {
		case s.Probability > 0:
			if p.rnd.Float64() >= s.Probability {
				continue
			}
		case s.Every > 1:
			if s.matched%s.Every != 0 {
				continue
			}
		}
		s.acted++
		p.injected[s.Name]++
		p.total++
		return s.FaultRule, true
	}
	return FaultRule{}, false
}

// streamKind names the kind of a streaming request ("watch", "exec", "attach", "portforward",
// "log"), "" for an ordinary one.
func streamKind(r *http.Request) string {
	q := r.URL.Query()
	if w := q.Get("watch"); w == "true" || w == "1" || strings.Contains(r.URL.Path, "/watch/") {
		return "watch"
	}
	for _, sub := range []string{"exec", "attach", "portforward", "log", "proxy"} {
		if strings.HasSuffix(r.URL.Path, "/"+sub) || strings.Contains(r.URL.Path, "/"+sub+"/") {
			return sub
		}
	}
	if r.Header.Get("Upgrade") != "" {
		return "upgrade"
	}
	return ""
}

// writeStatus answers as the API server does when it refuses a call: a Status object, so
// client-go turns it into the matching apierrors error.
func writeStatus(w http.ResponseWriter, code int, msg string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reasonFor(code),
		Code:     int32(code),
	}
	b, _ := json.Marshal(st)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func reasonFor(code int) metav1.StatusReason {
	switch code {
	case http.StatusNotFound:
		return metav1.StatusReasonNotFound
	case http.StatusConflict:
		return metav1.StatusReasonConflict
	case http.StatusTooManyRequests:
		return metav1.StatusReasonTooManyRequests
	case http.StatusServiceUnavailable:
		return metav1.StatusReasonServiceUnavailable
	case http.StatusGatewayTimeout:
		return metav1.StatusReasonTimeout
	case http.StatusForbidden:
		return metav1.StatusReasonForbidden
	case http.StatusBadRequest:
		return metav1.StatusReasonBadRequest
	}
	if code >= 500 {
		return metav1.StatusReasonInternalError
	}
	return metav1.StatusReasonUnknown
}
