package devingress

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

// podAddr is the integration tests' workspace pod.
const podAddr = "192.0.2.10:8080"

// The integration tests run against the local API server (scripts/localkube/up.sh, which
// installs the Gateway API's CRDs); with -short only the unit tests run.
func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Cluster: true})
}

// The entry point follows the real objects on a real API server in both modes: the route the
// API server accepted (the HTTPRoute validated by the CRD's schema and rules) sends a sleeping
// workspace's host to the activator, its switch to the workspace's Service applies to the
// very next request, and its removal ends the route.
func TestIntegrationFollowsTheRoute(t *testing.T) {
	eachRouting(t, func(t *testing.T, routing string) {
		k, namespace := env.Namespace(t)
		ctx := context.Background()
		gw, err := gatewayclient.NewForConfig(k.Config)
		if err != nil {
			t.Fatal(err)
		}
		o := kubeOptions(t, "")
		o.Namespace = namespace
		asleep, svc := workspaceIn(t, routing, o, true)
		running, _ := workspaceIn(t, routing, o, false)
		svc.Namespace = namespace

		if _, err := k.Client.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// a ready pod's endpoint, as the EndpointSlice controller would write it (the API server
		// refuses loopback addresses, so a Transport answers for this one, from TEST-NET-1; the
		// controller leaves a slice it did not write alone)
		es := slice(t, podAddr, true)
		es.Namespace = namespace
		if _, err := k.Client.DiscoveryV1().EndpointSlices(namespace).Create(ctx, es, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		put := func(obj any) {
			t.Helper()
			var err error
			switch o := obj.(type) {
			case *networkingv1.Ingress:
				o = o.DeepCopy()
				o.Namespace = namespace
				cur, gerr := k.Client.NetworkingV1().Ingresses(namespace).Get(ctx, o.Name, metav1.GetOptions{})
				if gerr != nil {
					_, err = k.Client.NetworkingV1().Ingresses(namespace).Create(ctx, o, metav1.CreateOptions{})
				} else {
					o.ResourceVersion = cur.ResourceVersion
					_, err = k.Client.NetworkingV1().Ingresses(namespace).Update(ctx, o, metav1.UpdateOptions{})
				}
			case *gatewayv1.HTTPRoute:
				o = o.DeepCopy()
				o.Namespace = namespace
				o.Spec.ParentRefs[0].Namespace = ptr(gatewayv1.Namespace(namespace))
				cur, gerr := gw.GatewayV1().HTTPRoutes(namespace).Get(ctx, o.Name, metav1.GetOptions{})
				if gerr != nil {
					_, err = gw.GatewayV1().HTTPRoutes(namespace).Create(ctx, o, metav1.CreateOptions{})
				} else {
					o.ResourceVersion = cur.ResourceVersion
					_, err = gw.GatewayV1().HTTPRoutes(namespace).Update(ctx, o, metav1.UpdateOptions{})
				}
			}
			if err != nil {
				t.Fatalf("the API server refused the route: %v", err)
			}
		}

		activator := make(chan string, 10)
		h, err := New(k.Client, Options{Namespace: namespace, Domain: domain,
			Routing: routing, GatewayClient: gw, Gateway: GatewayRef{Name: gatewayName},
			ActivatorService: o.ActivatorService,
			Activator: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				activator <- r.Host
				_, _ = io.WriteString(w, "the activator")
			}),
			EndpointWait: time.Second,
			Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("pod " + r.URL.Host)), Request: r}, nil
			}),
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			t.Fatal(err)
		}
		front := httptest.NewServer(h)
		t.Cleanup(front.Close)
		get := func() (int, string) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, front.URL+"/?folder=/app", nil)
			req.Host = host + ":" + strconv.Itoa(front.Listener.Addr().(*net.TCPAddr).Port)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}

		if code, body := get(); code != http.StatusNotFound {
			t.Fatalf("no route yet: %d %s", code, body)
		}
		put(asleep)
		if code, body := get(); code != http.StatusOK || body != "the activator" || len(activator) != 1 {
			t.Fatalf("asleep: %d %q (%d requests at the activator)", code, body, len(activator))
		}
		put(running)
		if code, body := get(); code != http.StatusOK || body != "pod "+podAddr || len(activator) != 1 {
			t.Fatalf("running: %d %q", code, body)
		}
		var err2 error
		if routing == RoutingGateway {
			err2 = gw.GatewayV1().HTTPRoutes(namespace).Delete(ctx, "vs-code-"+id, metav1.DeleteOptions{})
		} else {
			err2 = k.Client.NetworkingV1().Ingresses(namespace).Delete(ctx, "vs-code-"+id, metav1.DeleteOptions{})
		}
		if err2 != nil {
			t.Fatal(err2)
		}
		if code, _ := get(); code != http.StatusNotFound {
			t.Fatalf("route removed: %d", code)
		}
	})
}

// The API server validates what the entry point reads: an HTTPRoute it would refuse never
// reaches it. A route without a parent is accepted (and served by no Gateway: 404 here).
func TestIntegrationAnUnattachedRouteIsNotServed(t *testing.T) {
	k, namespace := env.Namespace(t)
	ctx := context.Background()
	gw, err := gatewayclient.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	o := kubeOptions(t, "")
	r := httpRoute(t, o, true)
	r.Namespace, r.Spec.ParentRefs = namespace, nil
	if _, err := gw.GatewayV1().HTTPRoutes(namespace).Create(ctx, r, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h, err := New(k.Client, Options{Namespace: namespace, Domain: domain, Routing: RoutingGateway, GatewayClient: gw,
		Gateway: GatewayRef{Name: gatewayName}, ActivatorService: o.ActivatorService, Activator: http.NotFoundHandler(),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://"+host+"/", nil)
	h.ServeHTTP(w, req)
	if w.Code != http.StatusNotFound {
		t.Fatalf("an unattached route: %d, want 404", w.Code)
	}
	// and one the CRD's rules refuse: a backendRef to a Service without a port
	bad := httpRoute(t, o, false)
	bad.Name, bad.Namespace = "vs-code-cd34ab12", namespace
	bad.Spec.Rules[0].BackendRefs[0].Port = nil
	if _, err := gw.GatewayV1().HTTPRoutes(namespace).Create(ctx, bad, metav1.CreateOptions{}); err == nil {
		t.Fatal("the API server accepted a Service backendRef without a port: the CRDs are not installed")
	}
}
