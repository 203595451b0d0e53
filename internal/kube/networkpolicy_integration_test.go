package kube

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// The API server takes the namespace's default-deny (scripts/local-network-policy.yaml, which
// scripts/run.sh applies; infra sets the same) and a workspace policy with every rule this
// package writes (the probe subnet, a DNS CIDR, the cluster's DNS pods), and the workspace
// comes up beside them. Whether traffic is dropped is the CNI's business: the local cluster's
// (kwok, and the real node's bridge CNI) enforces no NetworkPolicy, GKE's Dataplane V2 does.
func TestIntegrationNetworkPolicies(t *testing.T) {
	c, cs := newCluster(t, func(o *Options) {
		o.DNSCIDRs = []string{"169.254.20.10/32"}
		o.ProbeSourceCIDRs = []string{"10.8.0.0/28"}
	})
	ctx := t.Context()
	ns := c.Options().Namespace
	raw, err := os.ReadFile("../../scripts/local-network-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var deny networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict(raw, &deny); err != nil {
		t.Fatal(err)
	}
	if deny.Name != "hyperbola-default-deny" || len(deny.Spec.PodSelector.MatchLabels) != 0 || len(deny.Spec.Ingress)+len(deny.Spec.Egress) != 0 ||
		!slices.Equal(deny.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Fatalf("not a default-deny of every pod both ways: %+v", deny)
	}
	if _, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, &deny, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ws := newWorkspace(t)
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	got, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "vs-code-"+ws.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Ingress) != 2 || len(got.Spec.Egress) != 3 {
		t.Fatalf("stored policy has %d ingress and %d egress rules, want 2 and 3: %+v", len(got.Spec.Ingress), len(got.Spec.Egress), got.Spec)
	}
	eventually(t, 60*time.Second, "Ready beside the default-deny", func() (bool, error) {
		o := observe(t, c, ws.ID)
		if o.PodProblem != "" {
			return false, errors.New(o.PodProblem)
		}
		return o.Ready, nil
	})
}
