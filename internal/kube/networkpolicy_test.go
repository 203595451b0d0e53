package kube

import (
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func TestGoldenNetworkPolicy(t *testing.T) {
	got, err := NetworkPolicy(testWorkspace(), testOptions())
	golden(t, "networkpolicy", got, err, &networkingv1.NetworkPolicy{})
}

// With a node-local DNS cache, a probe subnet and DNS pods of their own.
func TestGoldenNetworkPolicyProbeAndDNS(t *testing.T) {
	o := testOptions()
	o.DNSNamespace, o.DNSPodLabels = "dns", map[string]string{"app": "coredns"}
	o.DNSCIDRs = []string{"169.254.20.10/32"}
	o.ProbeSourceCIDRs = []string{"10.8.0.0/28", "10.9.0.0/28"}
	got, err := NetworkPolicy(testWorkspace(), o)
	golden(t, "networkpolicy-probe-dns", got, err, &networkingv1.NetworkPolicy{})
}

// The rules as a reviewer reads them: what may come in, what may go out, and on which ports.
func TestNetworkPolicyRules(t *testing.T) {
	o := testOptions()
	o.DNSCIDRs = []string{"169.254.20.10/32"}
	o.ProbeSourceCIDRs = []string{"10.8.0.0/28"}
	ac, err := NetworkPolicy(testWorkspace(), o)
	if err != nil {
		t.Fatal(err)
	}
	var np networkingv1.NetworkPolicy
	roundTrip(t, ac, &np)
	spec := np.Spec

	// every ingress rule is for the workspace's port alone
	for i, r := range spec.Ingress {
		if len(r.Ports) != 1 || r.Ports[0].Port.IntVal != o.Port {
			t.Errorf("ingress rule %d: ports %v, want only %d", i, r.Ports, o.Port)
		}
	}
	if len(spec.Ingress) != 2 || spec.Ingress[1].From[0].IPBlock.CIDR != "10.8.0.0/28" {
		t.Errorf("ingress %+v: want the ingress controller's namespace and the probe subnet", spec.Ingress)
	}

	if len(spec.Egress) != 3 {
		t.Fatalf("%d egress rules, want DNS pods, DNS CIDRs and the internet", len(spec.Egress))
	}
	// DNS: to kube-system's kube-dns pods and the node-local cache, on 53 only
	for i, r := range spec.Egress[:2] {
		if len(r.To) == 0 {
			t.Errorf("egress rule %d: DNS to anywhere", i)
		}
		for _, p := range r.Ports {
			if p.Port.IntVal != 53 {
				t.Errorf("egress rule %d: port %v, want 53 only", i, p.Port)
			}
		}
	}
	pods := spec.Egress[0].To[0]
	if pods.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "kube-system" || pods.PodSelector.MatchLabels["k8s-app"] != "kube-dns" {
		t.Errorf("DNS peer %+v: want kube-system's k8s-app=kube-dns pods", pods)
	}
	if got := spec.Egress[1].To[0].IPBlock.CIDR; got != "169.254.20.10/32" {
		t.Errorf("DNS CIDR %s", got)
	}
	// the internet, on any port, except link-local (both metadata servers) and the inside
	internet := spec.Egress[2]
	if len(internet.Ports) != 0 || len(internet.To) != 1 || internet.To[0].IPBlock.CIDR != "0.0.0.0/0" {
		t.Fatalf("internet rule %+v", internet)
	}
	if !slices.Contains(internet.To[0].IPBlock.Except, "169.254.0.0/16") {
		t.Errorf("link-local not denied: %v", internet.To[0].IPBlock.Except)
	}
}

func TestNetworkPolicyWithoutProbe(t *testing.T) {
	ac, err := NetworkPolicy(testWorkspace(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	var np networkingv1.NetworkPolicy
	roundTrip(t, ac, &np)
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Egress) != 2 {
		t.Errorf("%d ingress and %d egress rules, want 1 and 2 (no probe, no DNS CIDRs)", len(np.Spec.Ingress), len(np.Spec.Egress))
	}
}

func TestValidateCIDRs(t *testing.T) {
	if err := ValidateCIDRs([]string{"10.8.0.0/28", "169.254.20.10/32", "fd00::/64"}); err != nil {
		t.Error(err)
	}
	for in, want := range map[string]string{
		"10.8.0.1/28": "host bits",
		"10.8.0.1":    "not a CIDR",
		"":            "not a CIDR",
		"10.8.0.0/33": "not a CIDR",
	} {
		err := ValidateCIDRs([]string{in})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", in, err, want)
		}
	}
}
