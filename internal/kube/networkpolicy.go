package kube

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// MetadataServerCIDR is the cloud metadata server, which hands out the node's (or the
// workload identity's) credentials: a workspace must never reach it.
const MetadataServerCIDR = "169.254.169.254/32"

// EgressDeniedCIDRs are the IPv4 ranges a workspace may not reach even though it may reach the
// internet: the metadata server, the private ranges (the cluster's nodes, pods and services
// and the VPC behind them), and the shared address space that GKE may use for pods.
// A workspace is a stranger's shell: it gets the internet, never the inside. IPv6 egress is
// not allowed at all (the policy has no IPv6 block).
var EgressDeniedCIDRs = []string{
	MetadataServerCIDR,
	"10.0.0.0/8",
	"172.16.0.0/12",
	"192.168.0.0/16",
	"100.64.0.0/10",
}

// NetworkPolicy builds the workspace's NetworkPolicy, vs-code-<id>, for its pods only:
//   - ingress only from pods in the ingress controller's namespace, on the workspace's port;
//   - egress to DNS (UDP and TCP 53) anywhere, and to the IPv4 internet except
//     EgressDeniedCIDRs (the metadata server and every private range).
func NetworkPolicy(ws session.Workspace, o Options) (*networkingv1ac.NetworkPolicyApplyConfiguration, error) {
	return build(ws, o, networkPolicy)
}

func networkPolicy(w workspace, o Options) *networkingv1ac.NetworkPolicyApplyConfiguration {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	return networkingv1ac.NetworkPolicy(w.names.Workspace, o.Namespace).
		WithLabels(w.labels).
		WithAnnotations(w.annotations).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(w.selector)).
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress).
			WithIngress(networkingv1ac.NetworkPolicyIngressRule().
				WithFrom(networkingv1ac.NetworkPolicyPeer().
					WithNamespaceSelector(metav1ac.LabelSelector().
						WithMatchLabels(map[string]string{corev1.LabelMetadataName: o.IngressNamespace}))).
				WithPorts(networkingv1ac.NetworkPolicyPort().WithProtocol(tcp).WithPort(intstr.FromInt32(o.Port)))).
			WithEgress(
				networkingv1ac.NetworkPolicyEgressRule().
					WithPorts(
						networkingv1ac.NetworkPolicyPort().WithProtocol(udp).WithPort(intstr.FromInt32(53)),
						networkingv1ac.NetworkPolicyPort().WithProtocol(tcp).WithPort(intstr.FromInt32(53)),
					),
				networkingv1ac.NetworkPolicyEgressRule().
					WithTo(networkingv1ac.NetworkPolicyPeer().
						WithIPBlock(networkingv1ac.IPBlock().WithCIDR("0.0.0.0/0").WithExcept(EgressDeniedCIDRs...))),
			))
}
