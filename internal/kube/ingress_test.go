package kube

import (
	"fmt"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func TestGoldenIngress(t *testing.T) {
	got, err := Ingress(testWorkspace(), testOptions())
	golden(t, "ingress", got, err, &networkingv1.Ingress{})
}

func TestGoldenIngressAsleep(t *testing.T) {
	got, err := Ingress(sleepingWorkspace(), testOptions())
	golden(t, "ingress-asleep", got, err, &networkingv1.Ingress{})
}

// The local cluster's opt-out: HTTPS with the activator's Host, no verification, no SNI.
func TestGoldenIngressAsleepSkipVerify(t *testing.T) {
	o := testOptions()
	o.ActivatorSkipVerify = true
	got, err := Ingress(sleepingWorkspace(), o)
	golden(t, "ingress-asleep-skip-verify", got, err, &networkingv1.Ingress{})
}

// The Ingress of a workspace that is not running goes to the activator only when wake on
// access is on; over HTTPS (with the Cloud Run host) only when a host is set, and then
// verified with SNI unless verification is explicitly skipped. Every other field stays the
// workspace's.
func TestIngressRoute(t *testing.T) {
	decode := func(ws session.Workspace, o Options) networkingv1.Ingress {
		t.Helper()
		ac, err := Ingress(ws, o)
		if err != nil {
			t.Fatal(err)
		}
		var ing networkingv1.Ingress
		roundTrip(t, ac, &ing)
		return ing
	}
	backend := func(ing networkingv1.Ingress) string {
		b := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
		if b.Port.Name != "" {
			return b.Name + ":" + b.Port.Name
		}
		return fmt.Sprintf("%s:%d", b.Name, b.Port.Number)
	}
	activatorAnnotations := func(ing networkingv1.Ingress) []string {
		var out []string
		for _, k := range []string{AnnotationBackendProtocol, AnnotationUpstreamVhost, AnnotationProxySSLSecret,
			AnnotationProxySSLVerify, AnnotationProxySSLVerifyDepth, AnnotationProxySSLName, AnnotationProxySSLServerName} {
			if v, ok := ing.Annotations[k]; ok {
				out = append(out, k[strings.LastIndex(k, "/")+1:]+"="+v)
			}
		}
		return out
	}
	running, asleep := testWorkspace(), sleepingWorkspace()
	full := testOptions()
	off := testOptions()
	off.ActivatorService = ""
	plain := testOptions()
	plain.ActivatorHost, plain.ActivatorCASecret = "", ""
	skip := testOptions()
	skip.ActivatorSkipVerify = true
	port := testOptions()
	port.ActivatorPort = 8443
	verified := []string{"backend-protocol=HTTPS", "upstream-vhost=" + full.ActivatorHost, "proxy-ssl-secret=hyperbola/hyperbola-activator-ca",
		"proxy-ssl-verify=on", "proxy-ssl-verify-depth=2", "proxy-ssl-name=" + full.ActivatorHost, "proxy-ssl-server-name=on"}
	for name, tc := range map[string]struct {
		ws      session.Workspace
		o       Options
		backend string
		ann     []string
	}{
		"running":                {running, full, "vs-code-ab12cd34:http", nil},
		"asleep, wake off":       {asleep, off, "vs-code-ab12cd34:http", nil},
		"asleep, in cluster":     {asleep, plain, "hyperbola-activator:80", nil},
		"asleep, verify skipped": {asleep, skip, "hyperbola-activator:443", []string{"backend-protocol=HTTPS", "upstream-vhost=" + full.ActivatorHost}},
		"asleep, another port":   {asleep, port, "hyperbola-activator:8443", verified},
		"asleep, verified, SNI":  {asleep, full, "hyperbola-activator:443", verified},
	} {
		ing := decode(tc.ws, tc.o)
		if got := backend(ing); got != tc.backend {
			t.Errorf("%s: backend %s, want %s", name, got, tc.backend)
		}
		if got := activatorAnnotations(ing); fmt.Sprint(got) != fmt.Sprint(tc.ann) {
			t.Errorf("%s: annotations %v, want %v", name, got, tc.ann)
		}
		// host, TLS, timeouts and the certificate request do not depend on the route
		want := decode(running, tc.o)
		if fmt.Sprint(ing.Spec.TLS, ing.Spec.Rules[0].Host, *ing.Spec.IngressClassName, ing.Labels) !=
			fmt.Sprint(want.Spec.TLS, want.Spec.Rules[0].Host, *want.Spec.IngressClassName, want.Labels) ||
			ing.Annotations["cert-manager.io/cluster-issuer"] != want.Annotations["cert-manager.io/cluster-issuer"] ||
			ing.Annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] != IngressProxyTimeout {
			t.Errorf("%s: the route changed more than the backend: %+v", name, ing)
		}
	}
}

// Verification is the default: an activator host without a CA secret named is verified with
// the Secret infra creates.
func TestIngressVerifyByDefault(t *testing.T) {
	o := testOptions()
	o.ActivatorCASecret = ""
	ac, err := Ingress(sleepingWorkspace(), o)
	if err != nil {
		t.Fatal(err)
	}
	var ing networkingv1.Ingress
	roundTrip(t, ac, &ing)
	if got := ing.Annotations[AnnotationProxySSLSecret]; got != o.Namespace+"/"+DefaultActivatorCASecret || ing.Annotations[AnnotationProxySSLVerify] != "on" {
		t.Errorf("no CA secret named: %v", ing.Annotations)
	}
}
