package devingress

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

const (
	ns     = "hyperbola"
	domain = "ws.test"
	id     = "ab12cd34"
	host   = "vs-code-" + id + "." + domain
)

// kubeOptions are the builders' options of a deployment with wake on access on (the
// configuration's defaults), and the activator's own host when vhost is set (what infra sets
// in production).
func kubeOptions(t *testing.T, vhost string) kube.Options {
	t.Helper()
	o := kube.Options{Namespace: ns, Domain: domain, Port: 8080, IngressClass: "nginx", ClusterIssuer: "letsencrypt",
		IngressNamespace: "ingress-nginx",
		BackupPVC:        "hyperbola-backups", BackupImage: "localhost/hyperbola-backup:1",
		BackupDeadline: 30 * time.Minute, ActivatorService: "hyperbola-activator", ActivatorPort: 80, ActivatorHost: vhost}
	if vhost != "" {
		o.ActivatorPort = 443
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	return o
}

// typed turns a builder's apply configuration into the object the API server would hold.
func typed[T any](t *testing.T, ac any, err error) *T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ac)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// workspace returns the Ingress and Service Hyperbola writes for the session, routed to the
// activator or to its own Service.
func workspace(t *testing.T, o kube.Options, asleep bool) (*networkingv1.Ingress, *corev1.Service) {
	t.Helper()
	ws := session.Workspace{ID: id, UserID: "ada@example.com", Activator: asleep, CreatedAt: time.Unix(1_800_000_000, 0),
		Image: session.DefaultImage, Storage: session.DefaultStorage, CPU: session.DefaultCPU, Memory: session.DefaultMemory}
	ing, err := kube.Ingress(ws, o)
	i := typed[networkingv1.Ingress](t, ing, err)
	svc, err := kube.Service(ws, o)
	return i, typed[corev1.Service](t, svc, err)
}

// gatewayName is the Gateway the tests' HTTPRoutes attach to, in ns (the configuration's
// defaults).
const gatewayName = "hyperbola"

// routings are the modes every routing test runs in.
var routings = []string{RoutingIngress, RoutingGateway}

// eachRouting runs test as a subtest per routing mode.
func eachRouting(t *testing.T, test func(t *testing.T, routing string)) {
	t.Helper()
	for _, r := range routings {
		t.Run(r, func(t *testing.T) { test(t, r) })
	}
}

// workspaceIn is workspace in a routing mode: the Ingress or the HTTPRoute, and the Service.
func workspaceIn(t *testing.T, routing string, o kube.Options, asleep bool) (any, *corev1.Service) {
	t.Helper()
	ing, svc := workspace(t, o, asleep)
	if routing == RoutingGateway {
		return httpRoute(t, o, asleep), svc
	}
	return ing, svc
}

// httpRoute is the HTTPRoute Hyperbola writes for the session in gateway mode (on the
// Gateway gatewayName in o.Namespace), routed to the activator or to its own Service.
func httpRoute(t *testing.T, o kube.Options, asleep bool) *gatewayv1.HTTPRoute {
	t.Helper()
	o.Routing, o.GatewayName, o.GatewayClass = kube.RoutingGateway, gatewayName, "hyperbola-local"
	ws := session.Workspace{ID: id, UserID: "ada@example.com", Activator: asleep, CreatedAt: time.Unix(1_800_000_000, 0),
		Image: session.DefaultImage, Storage: session.DefaultStorage, CPU: session.DefaultCPU, Memory: session.DefaultMemory}
	r, err := kube.HTTPRoute(ws, o)
	return typed[gatewayv1.HTTPRoute](t, r, err)
}

// slice is the EndpointSlice the controller would write for the workspace's Service, with
// one endpoint at addr (host:port) that is ready or not.
func slice(t *testing.T, addr string, ready bool) *discoveryv1.EndpointSlice {
	t.Helper()
	return sliceOn(t, addr, ready, "")
}

// sliceOn is slice with the endpoint's pod on node.
func sliceOn(t *testing.T, addr string, ready bool, node string) *discoveryv1.EndpointSlice {
	t.Helper()
	ip, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	name, proto, port32 := "http", corev1.ProtocolTCP, int32(port)
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "vs-code-" + id + "-x1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "vs-code-" + id}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port32}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}, NodeName: nodeName(node)}},
	}
}

func nodeName(n string) *string {
	if n == "" {
		return nil
	}
	return &n
}

type setup struct {
	kube      *fake.Clientset
	gateway   *gatewayfake.Clientset
	front     *httptest.Server
	activator chan *http.Request // what the in-process activator received
}

func newSetup(t *testing.T, objs ...any) *setup {
	t.Helper()
	return newSetupWith(t, Options{}, objs...)
}

// newSetupWith is newSetup with opts' FakeNodes and Transport. The entry point routes by
// HTTPRoutes (Gateway gatewayName in ns) when objs hold one, else by Ingresses.
func newSetupWith(t *testing.T, opts Options, objs ...any) *setup {
	t.Helper()
	s := &setup{kube: fake.NewClientset(), gateway: gatewayfake.NewClientset(), activator: make(chan *http.Request, 10)}
	routing := RoutingIngress
	for _, o := range objs {
		if _, ok := o.(*gatewayv1.HTTPRoute); ok {
			routing = RoutingGateway
		}
		s.add(t, o)
	}
	act := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.activator <- r
		switch r.URL.Path {
		case "/redirect":
			w.Header().Add("Set-Cookie", "hyperbola_wake=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax")
			w.Header().Add("Set-Cookie", "__Host-hyperbola_hop=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax")
			http.Redirect(w, r, "https://"+host+"/?folder=/app", http.StatusSeeOther)
		default:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			body := `<main data-target="https://` + host + `/?folder=/app"><a href="http://` + host + `/">open</a>` +
				`<a href="https://` + host + `.evil.example/">not ours</a><a href="https://` + host + `:9443/">a port</a></main>`
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = io.WriteString(w, body)
		}
	})
	h, err := New(s.kube, Options{Namespace: ns, Domain: domain, ActivatorService: "hyperbola-activator", Activator: act,
		Routing: routing, GatewayClient: s.gateway, Gateway: GatewayRef{Name: gatewayName},
		EndpointWait: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		FakeNodes: opts.FakeNodes, Transport: opts.Transport})
	if err != nil {
		t.Fatal(err)
	}
	s.front = httptest.NewServer(h)
	t.Cleanup(s.front.Close)
	return s
}

func (s *setup) add(t *testing.T, obj any) {
	t.Helper()
	ctx := context.Background()
	var err error
	switch o := obj.(type) {
	case *networkingv1.Ingress:
		_, err = s.kube.NetworkingV1().Ingresses(ns).Create(ctx, o, metav1.CreateOptions{})
	case *gatewayv1.HTTPRoute:
		_, err = s.gateway.GatewayV1().HTTPRoutes(ns).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Service:
		_, err = s.kube.CoreV1().Services(ns).Create(ctx, o, metav1.CreateOptions{})
	case *discoveryv1.EndpointSlice:
		_, err = s.kube.DiscoveryV1().EndpointSlices(ns).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Node:
		_, err = s.kube.CoreV1().Nodes().Create(ctx, o, metav1.CreateOptions{})
	default:
		t.Fatalf("unknown object %T", obj)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// answer is a response whose body get has read and closed.
type answer struct{ *http.Response }

// get requests path on the front with Host host, without following redirects, and returns
// the response with its body.
func (s *setup) get(t *testing.T, host, path string) (answer, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.front.URL+path, nil)
	req.Host = host
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp}, string(b)
}

// pod is a stand-in workspace pod on loopback that echoes what it received.
func pod(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pod: %s %s host=%s xfh=%s xfp=%s xff=%s", r.Method, r.URL.RequestURI(), r.Host,
			r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestUnknownHostsAre404(t *testing.T) {
	eachRouting(t, func(t *testing.T, routing string) {
		o := kubeOptions(t, "")
		route, svc := workspaceIn(t, routing, o, false)
		s := newSetup(t, route, svc)
		for _, h := range []string{
			"example.com",
			"vs-code-zz99zz99." + domain,     // no such Ingress or HTTPRoute
			domain,                           // the domain itself
			"vs-code-" + id + ".other.test",  // another domain
			"Not_A_Label." + domain,          // not a name
			"vs-code-" + id + ".x." + domain, // deeper
		} {
			if resp, _ := s.get(t, h, "/"); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", h, resp.StatusCode)
			}
		}
		// a route of that name that serves another host
		switch r := route.(type) {
		case *networkingv1.Ingress:
			other := r.DeepCopy()
			other.Name, other.Spec.Rules[0].Host = "vs-code-cd34ab12", host
			s.add(t, other)
		case *gatewayv1.HTTPRoute:
			other := r.DeepCopy()
			other.Name = "vs-code-cd34ab12"
			s.add(t, other)
		}
		if resp, _ := s.get(t, "vs-code-cd34ab12."+domain, "/"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("a route for another host: %d, want 404", resp.StatusCode)
		}
	})
}

func TestRunningWorkspaceIsProxiedToItsPod(t *testing.T) {
	eachRouting(t, func(t *testing.T, routing string) {
		up := pod(t)
		o := kubeOptions(t, "")
		ing, svc := workspaceIn(t, routing, o, false)
		s := newSetup(t, ing, svc, slice(t, up.Listener.Addr().String(), true))
		resp, body := s.get(t, host+":8081", "/static/x.js?v=1")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		want := "pod: GET /static/x.js?v=1 host=" + host + ":8081 xfh=" + host + ":8081 xfp=http xff=127.0.0.1"
		if body != want {
			t.Fatalf("the pod got\n%s\nwant\n%s", body, want)
		}
		if len(s.activator) != 0 {
			t.Fatal("a running workspace's request reached the activator")
		}
	})
}

func TestNoReadyEndpointIs503(t *testing.T) {
	eachRouting(t, func(t *testing.T, routing string) {
		up := pod(t)
		o := kubeOptions(t, "")
		ing, svc := workspaceIn(t, routing, o, false)

		s := newSetup(t, ing, svc, slice(t, up.Listener.Addr().String(), false))
		start := time.Now()
		resp, _ := s.get(t, host, "/")
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("not ready: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if waited := time.Since(start); waited < 300*time.Millisecond {
			t.Errorf("answered after %s, before the endpoint wait", waited)
		}
		// no EndpointSlice at all, and no Service at all
		if resp, _ := newSetup(t, ing, svc).get(t, host, "/"); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("no slice: %d", resp.StatusCode)
		}
		if resp, _ := newSetup(t, ing).get(t, host, "/"); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("no Service: %d", resp.StatusCode)
		}
	})
}

// The Ingress goes back to the workspace when its pod is ready; the EndpointSlice can trail
// by a moment. A request in that moment waits for it instead of failing.
func TestAnEndpointThatBecomesReadyIsWaitedFor(t *testing.T) {
	eachRouting(t, func(t *testing.T, routing string) {
		up := pod(t)
		o := kubeOptions(t, "")
		ing, svc := workspaceIn(t, routing, o, false)
		s := newSetup(t, ing, svc)
		go func() {
			time.Sleep(100 * time.Millisecond)
			_, _ = s.kube.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), slice(t, up.Listener.Addr().String(), true), metav1.CreateOptions{})
		}()
		if resp, body := s.get(t, host, "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

// kwok's pods run nothing and their addresses are made up (they may be real addresses off
// this machine): they are never dialled, unless a Transport stands in for them.
func TestPodsOnFakeNodesAreNotDialled(t *testing.T) {
	eachRouting(t, func(t *testing.T, routing string) {
		hits := 0
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
		t.Cleanup(up.Close)
		fake := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kwok-node-0", Annotations: map[string]string{FakeNodeAnnotation: "fake"}}}
		real := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "localhost"}}
		o := kubeOptions(t, "")
		ing, svc := workspaceIn(t, routing, o, false)
		onFake := sliceOn(t, up.Listener.Addr().String(), true, fake.Name)

		if resp, _ := newSetup(t, ing, svc, fake, real, onFake).get(t, host, "/"); resp.StatusCode != http.StatusBadGateway || hits != 0 {
			t.Fatalf("a pod on a fake node: %d after %d requests to its address, want 502 and none", resp.StatusCode, hits)
		}
		if resp, _ := newSetup(t, ing, svc, fake, real, sliceOn(t, up.Listener.Addr().String(), true, real.Name)).get(t, host, "/"); resp.StatusCode != http.StatusOK || hits != 1 {
			t.Fatalf("a pod on a real node: %d after %d requests, want 200 and 1", resp.StatusCode, hits)
		}
		standIn := roundTrip(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusTeapot, Body: http.NoBody, Request: r}, nil
		})
		s := newSetupWith(t, Options{FakeNodes: true, Transport: standIn}, ing, svc, fake, onFake)
		if resp, _ := s.get(t, host, "/"); resp.StatusCode != http.StatusTeapot || hits != 1 {
			t.Fatalf("with a stand-in for fake pods: %d, %d requests to the address", resp.StatusCode, hits)
		}
	})
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestUpstreamFailureIs502(t *testing.T) {
	eachRouting(t, func(t *testing.T, routing string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		o := kubeOptions(t, "")
		ing, svc := workspaceIn(t, routing, o, false)
		s := newSetup(t, ing, svc, slice(t, closed, true))
		if resp, _ := s.get(t, host, "/"); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("a pod that refuses: %d, want 502", resp.StatusCode)
		}
	})
}

// code-server's workbench talks over a WebSocket: the upgrade and the bytes after it go
// through both ways.
func TestWebSocketUpgradeIsProxied(t *testing.T) {
	eachRouting(t, func(t *testing.T, routing string) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "websocket" || r.Host != host {
				http.Error(w, "want an upgrade for "+host, http.StatusBadRequest)
				return
			}
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			for {
				line, err := rw.ReadString('\n')
				if err != nil {
					return
				}
				_, _ = rw.WriteString("echo " + line)
				rw.Flush()
			}
		}))
		t.Cleanup(up.Close)
		o := kubeOptions(t, "")
		ing, svc := workspaceIn(t, routing, o, false)
		s := newSetup(t, ing, svc, slice(t, up.Listener.Addr().String(), true))

		conn, err := net.Dial("tcp", s.front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /stable-x?reconnectionToken=t HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close() // a 101 has no body: the connection carries what follows
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %d", resp.StatusCode)
		}
		for _, msg := range []string{"hello", "again"} {
			fmt.Fprintf(conn, "%s\n", msg)
			got, err := br.ReadString('\n')
			if err != nil || got != "echo "+msg+"\n" {
				t.Fatalf("after the upgrade: %q %v", got, err)
			}
		}
	})
}

// A sleeping workspace's Ingress or HTTPRoute names the activator: the request goes to the
// control plane in process, as nginx or a Gateway sends it there (a Gateway keeps the
// client's Host: in gateway mode the activator's host is the relay's business).
func TestSleepingWorkspaceGoesToTheActivator(t *testing.T) {
	eachRouting(t, func(t *testing.T, routing string) {
		for _, vhost := range []string{"", "session-api-123.a.run.app"} {
			t.Run("vhost="+vhost, func(t *testing.T) {
				o := kubeOptions(t, vhost)
				route, svc := workspaceIn(t, routing, o, true)
				s := newSetup(t, route, svc)
				resp, body := s.get(t, host+":8081", "/page")
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				r := <-s.activator
				wantHost := host + ":8081"
				if vhost != "" && routing == RoutingIngress {
					wantHost = vhost
				}
				if r.Host != wantHost || r.Header.Get("X-Forwarded-Host") != host+":8081" ||
					r.Header.Get("X-Forwarded-For") != "127.0.0.1" || r.Header.Get("X-Forwarded-Proto") != "http" {
					t.Fatalf("the activator got Host %q, X-Forwarded-Host %q, -For %q, -Proto %q", r.Host,
						r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"))
				}
			})
		}
	})
}

// The control plane names its workspace URLs as production serves them (https, no port); a
// browser on http://<host>:8081 is kept there.
func TestActivatorAnswersKeepTheBrowsersOrigin(t *testing.T) {
	o := kubeOptions(t, "")
	ing, svc := workspace(t, o, true)
	s := newSetup(t, ing, svc)

	resp, _ := s.get(t, host+":8081", "/redirect")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "http://"+host+":8081/?folder=/app" {
		t.Errorf("redirect: %d to %q", resp.StatusCode, loc)
	}
	// a __Host- cookie keeps Secure, without which a browser refuses it (and *.localhost may set it)
	if c := resp.Header.Values("Set-Cookie"); len(c) != 2 || !strings.Contains(c[1], "; Secure") {
		t.Fatalf("the __Host- cookie: %q", c)
	}
	if c := resp.Header.Get("Set-Cookie"); strings.Contains(strings.ToLower(c), "secure") || !strings.Contains(c, "HttpOnly") {
		t.Errorf("cookie over plain http: %q", c)
	}
	resp, body := s.get(t, host+":8081", "/page")
	want := `<main data-target="http://` + host + `:8081/?folder=/app"><a href="http://` + host + `:8081/">open</a>` +
		`<a href="https://` + host + `.evil.example/">not ours</a><a href="https://` + host + `:9443/">a port</a></main>`
	if body != want || resp.ContentLength != int64(len(want)) {
		t.Errorf("page (length %d):\n%s\nwant\n%s", resp.ContentLength, body, want)
	}
	// the browser's origin is the one the control plane names: nothing changes but https
	_, body = s.get(t, host, "/page")
	if !strings.Contains(body, `data-target="http://`+host+`/?folder=/app"`) || !strings.Contains(body, `href="http://`+host+`/"`) {
		t.Errorf("page without a port:\n%s", body)
	}
}

func TestMatchPath(t *testing.T) {
	prefix, exact, impl := networkingv1.PathTypePrefix, networkingv1.PathTypeExact, networkingv1.PathTypeImplementationSpecific
	backend := func(name string) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name}}
	}
	def := backend("default")
	ing := &networkingv1.Ingress{Spec: networkingv1.IngressSpec{
		DefaultBackend: &def,
		Rules: []networkingv1.IngressRule{
			{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				{Path: "/", PathType: &prefix, Backend: backend("root")},
				{Path: "/api/", PathType: &prefix, Backend: backend("api")},
				{Path: "/api/exact", PathType: &exact, Backend: backend("exact")},
				{Path: "/impl", PathType: &impl, Backend: backend("impl")},
			}}}},
			{Host: "other." + domain, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				{Path: "/only", PathType: &prefix, Backend: backend("only")},
			}}}},
		},
	}}
	for _, tc := range []struct{ host, path, want string }{
		{host, "/", "root"},
		{host, "", "root"},
		{strings.ToUpper(host), "/x", "root"},
		{host, "/api", "api"},
		{host, "/api/v1", "api"},
		{host, "/apix", "root"},
		{host, "/api/exact", "exact"},
		{host, "/api/exact/more", "api"},
		{host, "/impl/a", "impl"},
		{"other." + domain, "/only/a", "only"},
		{"other." + domain, "/elsewhere", "default"},
		{"third." + domain, "/", ""},
	} {
		got := ""
		if b := matchPath(ing, strings.ToLower(tc.host), tc.path); b != nil {
			got = b.Service.Name
		}
		if got != tc.want {
			t.Errorf("%s%s: %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestNewNeedsItsParts(t *testing.T) {
	k := fake.NewClientset()
	for name, tc := range map[string]struct {
		client *fake.Clientset
		opts   Options
	}{
		"no client":                   {nil, Options{Namespace: ns, Domain: domain}},
		"no namespace":                {k, Options{Domain: domain}},
		"no domain":                   {k, Options{Namespace: ns}},
		"an activator but no handler": {k, Options{Namespace: ns, Domain: domain, ActivatorService: "hyperbola-activator"}},
	} {
		var err error
		if tc.client == nil {
			_, err = New(nil, tc.opts)
		} else {
			_, err = New(tc.client, tc.opts)
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
