package kube

import (
	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

const (
	// UserID and GroupID are code-server's user in the codercom/code-server image ("coder"):
	// the workspace and the backup run as it, so the backup can read every file the
	// workspace wrote.
	UserID  int64 = 1000
	GroupID int64 = 1000
)

// restrictedContainer is the container security context of Kubernetes' "restricted" Pod
// Security Standard.
func restrictedContainer() *corev1ac.SecurityContextApplyConfiguration {
	return corev1ac.SecurityContext().
		WithAllowPrivilegeEscalation(false).
		WithCapabilities(corev1ac.Capabilities().WithDrop(corev1.Capability("ALL")))
}

// restrictedPod runs every container as code-server's user, with the runtime's seccomp profile.
func restrictedPod() *corev1ac.PodSecurityContextApplyConfiguration {
	return corev1ac.PodSecurityContext().
		WithRunAsNonRoot(true).
		WithRunAsUser(UserID).
		WithRunAsGroup(GroupID).
		WithFSGroup(GroupID).
		// Only chown the volume when its root does not already belong to the group: a
		// workspace with many files would otherwise wait for a recursive chown at every wake.
		WithFSGroupChangePolicy(corev1.FSGroupChangeOnRootMismatch).
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
}
