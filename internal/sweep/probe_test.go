package sweep_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

func TestParseHeartbeat(t *testing.T) {
	ok := map[string]sweep.Heartbeat{
		`{"status":"alive","lastHeartbeat":1767225600000}`:   {Status: "alive", Last: time.UnixMilli(1767225600000).UTC()},
		`{"status":"expired","lastHeartbeat":0}`:             {Status: "expired"},
		`{"lastHeartbeat":1767225600000.0,"status":"alive"}`: {Status: "alive", Last: time.UnixMilli(1767225600000).UTC()},
	}
	for in, want := range ok {
		got, err := sweep.ParseHeartbeat([]byte(in))
		if err != nil || got.Status != want.Status || !got.Last.Equal(want.Last) {
			t.Errorf("%s: %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{``, `{}`, `[]`, `{"status":"alive"}`, `{"lastHeartbeat":1}`,
		`{"status":"dead","lastHeartbeat":1}`, `{"status":"alive","lastHeartbeat":"1"}`,
		`{"status":"alive","lastHeartbeat":-5}`, `{"status":"alive","lastHeartbeat":1e300}`, `<html>`} {
		if hb, err := sweep.ParseHeartbeat([]byte(in)); err == nil {
			t.Errorf("%q parsed as %+v", in, hb)
		}
	}
}

func TestProbeURLTemplates(t *testing.T) {
	p, err := sweep.NewHTTPProber(sweep.ProbeOptions{Namespace: "ws", Port: 8080, Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := p.URL("ab12cd34"); u != "http://vs-code-ab12cd34.ws.svc.cluster.local:8080/healthz" {
		t.Fatalf("default URL %s", u)
	}
	if _, err := p.URL("../../x"); err == nil {
		t.Fatal("an invalid id must never reach a URL")
	}
	pub, err := sweep.NewHTTPProber(sweep.ProbeOptions{URLTemplate: sweep.PublicProbeURL, Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := pub.URL("ab12cd34"); u != "https://vs-code-ab12cd34.example.test/healthz" {
		t.Fatalf("public URL %s", u)
	}
	for _, bad := range []string{
		"http://vs-code.ws/healthz",               // no {id}
		"http://vs-code-{id}.ws/healthz?probe=1",  // a query makes code-server count the probe
		"http://vs-code-{id}.ws/",                 // not /healthz
		"ftp://vs-code-{id}.ws/healthz",           // scheme
		"http:///healthz/{id}",                    // no host
		"http://vs-code-{id}.{namespace}/healthz", // {namespace} without a value
	} {
		if _, err := sweep.NewHTTPProber(sweep.ProbeOptions{URLTemplate: bad, Port: 8080}); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}

// httpStandIn is a code-server stand-in: a real HTTP server on 127.0.0.1 answering /healthz.
func httpStandIn(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// dialMap maps host:port to a stand-in's address, as cluster DNS maps a Service name.
func dialMap(m map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, ok := m[addr]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
		}
		return d.DialContext(ctx, network, to)
	}
}

func TestHTTPProberAgainstStandIns(t *testing.T) {
	beat := time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC)
	var paths, conns atomic.Value
	paths.Store("")
	conns.Store("")
	good := httpStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.RequestURI())
		conns.Store(r.Header.Get("Connection"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"alive","lastHeartbeat":` + itoa(beat.UnixMilli()) + `}`))
	})
	failing := httpStandIn(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	garbage := httpStandIn(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`<html>login</html>`)) })
	redirect := httpStandIn(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/login", http.StatusFound) })
	huge := httpStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"alive","lastHeartbeat":1,"x":"` + strings.Repeat("a", 20000) + `"}`))
	})
	slow := httpStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	refusedAddr := closed.Listener.Addr().String()
	closed.Close()

	host := func(id string) string { return "vs-code-" + id + ".ws.svc.cluster.local:8080" }
	p, err := sweep.NewHTTPProber(sweep.ProbeOptions{Namespace: "ws", Port: 8080, DialContext: dialMap(map[string]string{
		host("agood000"): good.Listener.Addr().String(),
		host("afail000"): failing.Listener.Addr().String(),
		host("agarbage"): garbage.Listener.Addr().String(),
		host("aredirec"): redirect.Listener.Addr().String(),
		host("ahuge000"): huge.Listener.Addr().String(),
		host("aslow000"): slow.Listener.Addr().String(),
		host("arefused"): refusedAddr,
	})})
	if err != nil {
		t.Fatal(err)
	}
	probe := func(id string) (sweep.Heartbeat, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		return p.Probe(ctx, id)
	}
	hb, err := probe("agood000")
	if err != nil || hb.Status != "alive" || !hb.Last.Equal(beat) {
		t.Fatalf("good: %+v %v", hb, err)
	}
	if paths.Load() != "/healthz" {
		t.Fatalf("probed %q: exactly /healthz (no query) is what code-server does not count as activity", paths.Load())
	}
	if conns.Load() != "close" {
		t.Fatalf("Connection header %q: the probe must not keep a connection open (code-server counts it as activity)", conns.Load())
	}
	for id, reason := range map[string]string{
		"afail000": sweep.ReasonStatus, "agarbage": sweep.ReasonBadResponse, "aredirec": sweep.ReasonStatus,
		"ahuge000": sweep.ReasonBadResponse, "aslow000": sweep.ReasonTimeout, "arefused": sweep.ReasonRefused,
		"anohost0": sweep.ReasonUnreachable,
	} {
		_, err := probe(id)
		var pe *sweep.ProbeError
		if !errors.As(err, &pe) || pe.Reason != reason {
			t.Errorf("%s: %v, want reason %s", id, err, reason)
		}
	}
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
