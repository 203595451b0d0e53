package kube

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// LinkLocalCIDR is IPv4 link-local, where clouds put their metadata servers (GCE's at
// 169.254.169.254, GKE's workload-identity server at 169.254.169.252), which hand out the
// node's or the workload's credentials: a workspace must reach none of it. A node-local DNS
// cache there (GKE's NodeLocal DNSCache, 169.254.20.10) is let through on port 53 only, by
// Options.DNSCIDRs.
const LinkLocalCIDR = "169.254.0.0/16"

// EgressDeniedCIDRs are the IPv4 ranges a workspace may not reach even though it may reach the
// internet: link-local (the metadata servers), the private ranges (the cluster's nodes, pods
// and services and the VPC behind them, Memorystore included), and the shared address space
// that GKE may use for pods. A workspace is a stranger's shell: it gets the internet, never
// the inside. IPv6 egress is not allowed at all (the policy has no IPv6 block).
var EgressDeniedCIDRs = []string{
	LinkLocalCIDR,
	"10.0.0.0/8",
	"172.16.0.0/12",
	"192.168.0.0/16",
	"100.64.0.0/10",
}

// The cluster's DNS when Options name none: kube-dns's pods (GKE's kube-dns and CoreDNS both
// carry k8s-app=kube-dns) in kube-system.
const DefaultDNSNamespace = "kube-system"

// DefaultDNSPodLabels returns the labels of the cluster's DNS pods when Options name none.
func DefaultDNSPodLabels() map[string]string { return map[string]string{"k8s-app": "kube-dns"} }

// dnsPort is DNS, over UDP and over TCP (answers too large for UDP).
const dnsPort = 53

// NetworkPolicy builds the workspace's NetworkPolicy, vs-code-<id>, for its pods only:
//   - ingress on the workspace's port only: from pods in the ingress controller's namespace
//     (while an Ingress is written), from Options.GatewaySourceCIDRs in gateway mode, and
//     from Options.ProbeSourceCIDRs (the sweep's idle probe) when set;
//   - egress to DNS (UDP and TCP 53) only at the cluster's DNS pods and Options.DNSCIDRs, and
//     to the IPv4 internet except EgressDeniedCIDRs (link-local and every private range).
func NetworkPolicy(ws session.Workspace, o Options) (*networkingv1ac.NetworkPolicyApplyConfiguration, error) {
	return build(ws, o, networkPolicy)
}

func networkPolicy(w workspace, o Options) *networkingv1ac.NetworkPolicyApplyConfiguration {
	return networkingv1ac.NetworkPolicy(w.names.Workspace, o.Namespace).
		WithLabels(w.labels).
		WithAnnotations(w.annotations).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(w.selector)).
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress).
			WithIngress(ingressRules(o)...).
			WithEgress(egressRules(o)...))
}

func ingressRules(o Options) []*networkingv1ac.NetworkPolicyIngressRuleApplyConfiguration {
	port := networkingv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolTCP).WithPort(intstr.FromInt32(o.Port))
	var rules []*networkingv1ac.NetworkPolicyIngressRuleApplyConfiguration
	if o.writesIngress() {
		rules = append(rules, networkingv1ac.NetworkPolicyIngressRule().
			WithFrom(networkingv1ac.NetworkPolicyPeer().
				WithNamespaceSelector(metav1ac.LabelSelector().
					WithMatchLabels(map[string]string{corev1.LabelMetadataName: o.IngressNamespace}))).
			WithPorts(port))
	}
	// A Gateway's proxies are not pods of the cluster (GKE's are Google's front ends, which
	// send to the pod's IP): they are admitted by address.
	if o.gateway() {
		rules = append(rules, networkingv1ac.NetworkPolicyIngressRule().
			WithFrom(ipBlocks(o.GatewaySourceCIDRs)...).
			WithPorts(port))
	}
	if len(o.ProbeSourceCIDRs) > 0 {
		rules = append(rules, networkingv1ac.NetworkPolicyIngressRule().
			WithFrom(ipBlocks(o.ProbeSourceCIDRs)...).
			WithPorts(port))
	}
	return rules
}

func egressRules(o Options) []*networkingv1ac.NetworkPolicyEgressRuleApplyConfiguration {
	dns := func() []*networkingv1ac.NetworkPolicyPortApplyConfiguration {
		return []*networkingv1ac.NetworkPolicyPortApplyConfiguration{
			networkingv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolUDP).WithPort(intstr.FromInt32(dnsPort)),
			networkingv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolTCP).WithPort(intstr.FromInt32(dnsPort)),
		}
	}
	ns, labels := o.dnsPods()
	rules := []*networkingv1ac.NetworkPolicyEgressRuleApplyConfiguration{
		networkingv1ac.NetworkPolicyEgressRule().
			WithTo(networkingv1ac.NetworkPolicyPeer().
				WithNamespaceSelector(metav1ac.LabelSelector().
					WithMatchLabels(map[string]string{corev1.LabelMetadataName: ns})).
				WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(labels))).
			WithPorts(dns()...),
	}
	// A rule of its own: peers and ports of one rule combine, so these addresses get port 53
	// and nothing else, even where the internet rule's exceptions cover them (link-local).
	if len(o.DNSCIDRs) > 0 {
		rules = append(rules, networkingv1ac.NetworkPolicyEgressRule().
			WithTo(ipBlocks(o.DNSCIDRs)...).
			WithPorts(dns()...))
	}
	return append(rules, networkingv1ac.NetworkPolicyEgressRule().
		WithTo(networkingv1ac.NetworkPolicyPeer().
			WithIPBlock(networkingv1ac.IPBlock().WithCIDR("0.0.0.0/0").WithExcept(EgressDeniedCIDRs...))))
}

func ipBlocks(cidrs []string) []*networkingv1ac.NetworkPolicyPeerApplyConfiguration {
	peers := make([]*networkingv1ac.NetworkPolicyPeerApplyConfiguration, 0, len(cidrs))
	for _, c := range cidrs {
		peers = append(peers, networkingv1ac.NetworkPolicyPeer().WithIPBlock(networkingv1ac.IPBlock().WithCIDR(c)))
	}
	return peers
}

// dnsPods is the namespace and the labels of the cluster's DNS pods, the defaults where
// Options name none.
func (o Options) dnsPods() (string, map[string]string) {
	ns, labels := o.DNSNamespace, o.DNSPodLabels
	if ns == "" {
		ns = DefaultDNSNamespace
	}
	if len(labels) == 0 {
		labels = DefaultDNSPodLabels()
	}
	return ns, labels
}

// validateNetwork checks the network policy's settings: the DNS pods' labels, and CIDRs in
// canonical form (the API server rejects 10.0.0.1/8; an address alone is not a range).
func (o Options) validateNetwork() error {
	for _, k := range slices.Sorted(maps.Keys(o.DNSPodLabels)) {
		if err := validateLabel(k, o.DNSPodLabels[k]); err != nil {
			return fmt.Errorf("kube options: DNS pod labels: %w", err)
		}
	}
	if err := ValidateCIDRs(o.DNSCIDRs); err != nil {
		return fmt.Errorf("kube options: DNS CIDRs: %w", err)
	}
	if err := ValidateCIDRs(o.ProbeSourceCIDRs); err != nil {
		return fmt.Errorf("kube options: probe source CIDRs: %w", err)
	}
	return nil
}

// ValidateCIDRs checks that each of cidrs is a range in canonical form, such as 10.8.0.0/28
// (not 10.8.0.1/28, which the API server refuses in a NetworkPolicy).
func ValidateCIDRs(cidrs []string) error {
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR such as 10.8.0.0/28: %w", c, err)
		}
		if p.Masked() != p {
			return fmt.Errorf("%q has host bits set: write %s", c, p.Masked())
		}
	}
	return nil
}
