package kube

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// podListPage bounds one page of WorkspacePodIPs' list: a namespace of thousands of
// workspaces is read in a few requests, none of them holding every pod at once.
const podListPage = 500

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
	chosen := map[string]*corev1.Pod{}
	opts := metav1.ListOptions{LabelSelector: sel, Limit: podListPage}
	for {
		l, err := c.cs.CoreV1().Pods(c.opts.Namespace).List(ctx, opts)
		if err != nil {
			return nil, c.listError("Pods", sel, err)
		}
		for i := range l.Items {
			p := &l.Items[i]
			id := p.Labels[LabelSession]
			if id == "" || podIP(p) == "" {
				continue
			}
			if prev, ok := chosen[id]; !ok || newerPod(p, prev) {
				chosen[id] = p
			}
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
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
