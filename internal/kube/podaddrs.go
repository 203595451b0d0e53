package kube

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// WorkspacePodSelector selects every session's workspace pods (not its Jobs' pods).
func WorkspacePodSelector() string {
	return labels.SelectorFromSet(labels.Set{
		LabelManagedBy: ManagedByValue, LabelName: NameValue, LabelComponent: ComponentWorkspace,
	}).String()
}

// WorkspacePodIPs returns the address of each session's Ready workspace pod, by session id,
// from one (paged) list of the workspace pods: what the idle sweep probes when it reaches
// code-server by pod IP, without one read per session. A session whose pod is missing, not
// Ready, being deleted or without an address yet is absent. When a session has two Ready pods
// (a replacement overlapping its predecessor), the newer one's address is returned.
func (c *Cluster) WorkspacePodIPs(ctx context.Context) (map[string]string, error) {
	sel := WorkspacePodSelector()
	var pods []corev1.Pod
	if err := listStep(c, "Pods", sel, c.rd.CoreV1().Pods(c.opts.Namespace).List, podItems, &pods)(ctx); err != nil {
		return nil, err
	}
	chosen := map[string]*corev1.Pod{}
	for i := range pods {
		p := &pods[i]
		id := p.Labels[LabelSession]
		if id == "" || podIP(p) == "" {
			continue
		}
		if prev, ok := chosen[id]; !ok || newerPod(p, prev) {
			chosen[id] = p
		}
	}
	out := make(map[string]string, len(chosen))
	for id, p := range chosen {
		out[id] = podIP(p)
	}
	return out, nil
}

// podIP is the address of a Ready, running pod that is not being deleted; "" otherwise.
func podIP(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
		return ""
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return p.Status.PodIP
		}
	}
	return ""
}

// newerPod orders two pods of one session by creation, then by name, so the choice does not
// depend on the list's order.
func newerPod(p, than *corev1.Pod) bool {
	if !p.CreationTimestamp.Equal(&than.CreationTimestamp) {
		return than.CreationTimestamp.Before(&p.CreationTimestamp)
	}
	return strings.Compare(p.Name, than.Name) > 0
}
