// Package relay carries a workspace host's requests from a Gateway to the activator: plain
// HTTP in (GKE's Gateway cannot name an address outside the cluster, such as Cloud Run's),
// verified HTTPS out to the activator host, with the workspace's host in X-Forwarded-Host.
// It also holds the TCP passthrough that lets ingress-nginx's own TLS reach the activator
// through the same Service while both entry points serve (docs/operations/routing.md).
package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// HealthPath answers the load balancer's health check (and the kubelet's probes) from the
// relay itself; see Handler for which requests it is.
const HealthPath = "/healthz"

// The relay's timeouts. None bounds a whole request: an open editor keeps its websocket for
// hours, and the Gateway's backend timeout (GCPBackendPolicy timeoutSec) is the one limit.
const (
	// DialTimeout bounds the TCP connection to the activator.
	DialTimeout = 10 * time.Second
	// TLSHandshakeTimeout bounds the handshake with the activator.
	TLSHandshakeTimeout = 10 * time.Second
	// ResponseHeaderTimeout is how long the activator may think before it answers: Cloud
	// Run's own request timeout for session-api is 300 s.
	ResponseHeaderTimeout = 300 * time.Second
	// IdleConnTimeout closes pooled connections to the activator nobody uses.
	IdleConnTimeout = 90 * time.Second
	// ServerIdleTimeout keeps a client's idle keep-alive connection longer than Google's
	// front ends do (600 s), so the relay never closes one the load balancer is about to use.
	ServerIdleTimeout = 620 * time.Second
	// ReadHeaderTimeout bounds a request's headers (slow clients); the body is not bounded.
	ReadHeaderTimeout = 10 * time.Second
)

// Options are the relay's resolved settings.
type Options struct {
	// Host is the activator's host name (session-api's run.app host): the Host header, the
	// TLS server name and the name its certificate is verified against.
	Host string
	// Addr is where to connect, host:port; "" is Host:443. Tests point it at a local server.
	Addr string
	// RootCAs verify the activator; nil uses the system's roots.
	RootCAs *x509.CertPool
	// Logger logs failures; nil discards them.
	Logger *slog.Logger
}

func (o Options) addr() string {
	if o.Addr != "" {
		return o.Addr
	}
	return net.JoinHostPort(o.Host, "443")
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Validate reports what is wrong with o, naming the setting.
func (o Options) Validate() error {
	switch {
	case o.Host == "":
		return errors.New("relay: the activator host is empty")
	case strings.ContainsAny(o.Host, "/:@ "):
		return fmt.Errorf("relay: activator host %q: want a host name, no scheme, port or path", o.Host)
	}
	return nil
}

// Transport is the relay's client to the activator: TLS verified against o.RootCAs for
// o.Host, HTTP/1.1 (a websocket upgrade needs it), proxies from the environment ignored.
func Transport(o Options) *http.Transport {
	dialer := &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	addr := o.addr()
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{
			ServerName: o.Host,
			RootCAs:    o.RootCAs,
			MinVersion: tls.VersionTLS12,
		},
		TLSHandshakeTimeout:   TLSHandshakeTimeout,
		ResponseHeaderTimeout: ResponseHeaderTimeout,
		IdleConnTimeout:       IdleConnTimeout,
		MaxIdleConnsPerHost:   64,
	}
}

// Handler proxies every request to https://<o.Host> with Host = o.Host and X-Forwarded-Host
// = the request's own Host (the activator trusts it from its trusted proxies), keeping
// X-Forwarded-For and X-Forwarded-Proto as the Gateway set them. Websocket upgrades pass
// through. GET HealthPath without X-Forwarded-For is answered here: Google's front ends add
// that header to every visitor's request and its health checkers send none, so a sleeping
// workspace's own /healthz still reaches the activator.
func Handler(o Options) (http.Handler, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	log := o.logger()
	target := &url.URL{Scheme: "https", Host: o.Host}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = o.Host
			// Rewrite starts from a request without forwarding headers; the Gateway's are kept,
			// the host is the one this hop saw (never a client's own X-Forwarded-Host).
			for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto"} {
				if v := pr.In.Header.Values(h); len(v) > 0 {
					pr.Out.Header[h] = v
				}
			}
			if len(pr.In.Header.Values("X-Forwarded-For")) == 0 {
				if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
					pr.Out.Header.Set("X-Forwarded-For", ip)
				}
			}
			pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
		},
		Transport: Transport(o),
		// Flush at once: the activator's waking page streams nothing, but a proxied
		// server-sent stream must not sit in a buffer.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// r is the outbound request: the workspace's host is in X-Forwarded-Host by now.
			log.Error("relay: the activator did not answer", "workspace_host", r.Header.Get("X-Forwarded-Host"),
				"path", r.URL.Path, "err", err)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "the activator is not reachable\n")
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == HealthPath && r.Header.Get("X-Forwarded-For") == "" &&
			(r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		proxy.ServeHTTP(w, r)
	}), nil
}

// Server is the relay's HTTP server on addr with the timeouts above.
func Server(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       ServerIdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Passthrough copies every connection ln accepts to o's address and back, bytes only: the
// client's TLS (ingress-nginx's, with the activator's name and its verification) runs end to
// end, so this Service port serves an Ingress written for the activator's ExternalName
// Service. It returns when ctx ends (closing ln and every open connection) or ln fails.
func Passthrough(ctx context.Context, ln net.Listener, o Options) error {
	log := o.logger()
	addr := o.addr()
	dialer := &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	go func() {
		<-ctx.Done()
		_ = ln.Close()
	}()
	for {
		in, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("relay passthrough: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pipe(ctx, in, dialer, addr, log)
		}()
	}
}

// pipe joins in to a new connection to addr until either side closes or ctx ends.
func pipe(ctx context.Context, in net.Conn, dialer *net.Dialer, addr string, log *slog.Logger) {
	defer func() { _ = in.Close() }()
	out, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		log.Error("relay passthrough: the activator did not answer", "addr", addr, "err", err)
		return
	}
	defer func() { _ = out.Close() }()
	stop := context.AfterFunc(ctx, func() {
		_ = in.Close()
		_ = out.Close()
	})
	defer stop()
	done := make(chan struct{}, 2)
	half := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Pass the end of one direction on, and let the other finish.
		if c, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = c.CloseWrite()
		}
		done <- struct{}{}
	}
	go half(out, in)
	go half(in, out)
	<-done
	<-done
}
