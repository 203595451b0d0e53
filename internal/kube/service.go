package kube

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Service builds the workspace's ClusterIP Service, vs-code-<id>, port <Port> → http.
func Service(ws session.Workspace, o Options) (*corev1ac.ServiceApplyConfiguration, error) {
	return build(ws, o, service)
}

func service(w workspace, o Options) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(w.names.Workspace, o.Namespace).
		WithLabels(w.labels).
		WithAnnotations(w.annotations).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(w.selector).
			WithPorts(corev1ac.ServicePort().
				WithName(PortName).
				WithProtocol(corev1.ProtocolTCP).
				WithPort(o.Port).
				WithTargetPort(intstr.FromString(PortName))))
}
