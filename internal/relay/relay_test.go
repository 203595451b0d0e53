package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// activatorHost is a name the httptest server's certificate is valid for.
const activatorHost = "example.com"

// seen is what the fake activator reports about the request it got.
type seen struct {
	Host, Path, XFH, XFProto string
	XFF                      []string
	TLS                      bool
}

// activator is a TLS server on 127.0.0.1 that answers with what it saw, and echoes the bytes
// of an upgraded ("websocket") connection.
func activator(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			defer func() { _ = conn.Close() }()
			_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			_ = rw.Flush()
			_, _ = io.Copy(conn, rw) // echo until the client closes
			return
		}
		_ = json.NewEncoder(w).Encode(seen{
			Host: r.Host, Path: r.URL.RequestURI(), XFH: r.Header.Get("X-Forwarded-Host"),
			XFProto: r.Header.Get("X-Forwarded-Proto"), XFF: r.Header.Values("X-Forwarded-For"), TLS: r.TLS != nil,
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func roots(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

// relayTo starts the relay in front of srv and returns its URL.
func relayTo(t *testing.T, srv *httptest.Server, pool *x509.CertPool) string {
	t.Helper()
	h, err := Handler(Options{Host: activatorHost, Addr: srv.Listener.Addr().String(), RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	return front.URL
}

func TestHandler_Forwards(t *testing.T) {
	srv := activator(t)
	base := relayTo(t, srv, roots(srv))

	tests := map[string]struct {
		header  map[string][]string
		wantXFF []string
		wantXFP string
	}{
		"the gateway's forwarding headers are kept": {
			header:  map[string][]string{"X-Forwarded-For": {"203.0.113.7, 34.1.2.3"}, "X-Forwarded-Proto": {"https"}},
			wantXFF: []string{"203.0.113.7, 34.1.2.3"}, wantXFP: "https",
		},
		"a client's own X-Forwarded-Host is replaced": {
			header:  map[string][]string{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Host": {"vs-code-evil0000.example.org"}},
			wantXFF: []string{"203.0.113.7"},
		},
		"without X-Forwarded-For the peer is named": {
			wantXFF: []string{"127.0.0.1"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/some/path?x=1", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "vs-code-abcd1234.preview.example.com"
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var got seen
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			want := seen{Host: activatorHost, Path: "/some/path?x=1", XFH: "vs-code-abcd1234.preview.example.com",
				XFProto: tt.wantXFP, XFF: tt.wantXFF, TLS: true}
			if got.Host != want.Host || got.Path != want.Path || got.XFH != want.XFH || got.XFProto != want.XFProto ||
				got.TLS != want.TLS || strings.Join(got.XFF, "|") != strings.Join(want.XFF, "|") {
				t.Errorf("the activator saw %+v, want %+v", got, want)
			}
		})
	}
}

func TestHandler_Health(t *testing.T) {
	srv := activator(t)
	base := relayTo(t, srv, roots(srv))

	// the health checker's request: answered by the relay
	resp, err := http.Get(base + HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("health: %d %q", resp.StatusCode, body)
	}

	// a visitor's /healthz (through the gateway: X-Forwarded-For) goes to the activator
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+HealthPath, nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var got seen
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got.Path != HealthPath {
		t.Errorf("a visitor's /healthz: %+v, %v; want it proxied", got, err)
	}
}

func TestHandler_VerifiesTheActivator(t *testing.T) {
	srv := activator(t)
	// the system roots do not know httptest's certificate
	base := relayTo(t, srv, nil)
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502 from an unverified activator", resp.StatusCode)
	}
}

func TestHandler_Websocket(t *testing.T) {
	srv := activator(t)
	base := relayTo(t, srv, roots(srv))

	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(conn, "GET /stable/socket HTTP/1.1\r\nHost: vs-code-abcd1234.preview.example.com\r\n"+
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // a 101's body is empty; the bytes follow on conn
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	for _, msg := range []string{"hello", "and again"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q, %v; want %q", buf, err, msg)
		}
	}
}

func TestPassthrough(t *testing.T) {
	srv := activator(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Passthrough(ctx, ln, Options{Host: activatorHost, Addr: srv.Listener.Addr().String()}) }()

	// the client speaks TLS to the activator's name through the passthrough, as nginx does
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, ln.Addr().String())
		},
		TLSClientConfig: &tls.Config{ServerName: activatorHost, RootCAs: roots(srv)},
	}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+activatorHost+"/through", nil)
	req.Header.Set("X-Forwarded-Host", "vs-code-abcd1234.preview.example.com")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got seen
	err = json.NewDecoder(resp.Body).Decode(&got)
	_ = resp.Body.Close()
	if err != nil || got.Host != activatorHost || got.XFH != "vs-code-abcd1234.preview.example.com" || got.Path != "/through" {
		t.Errorf("the activator saw %+v, %v", got, err)
	}
	client.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Passthrough: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Passthrough did not return after its context ended")
	}
}

func TestOptions_Validate(t *testing.T) {
	for _, host := range []string{"", "https://api.run.app", "api.run.app:443", "api.run.app/x"} {
		if _, err := Handler(Options{Host: host}); err == nil {
			t.Errorf("host %q: no error", host)
		}
	}
}
