package kube

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
)

// warmNodeLabel is the label and taint key of the kwok node a warm-path test keeps to itself
// (the package's other tests share the cluster's nodes).
const warmNodeLabel = "hyperbola.dev/warm-test"

// The warm path against the real API server and kube-scheduler, on a kwok node of the test's
// own with room for exactly four default workspaces and the pre-pull pod: the sweep's Warm
// fills it with placeholders at the PriorityClass of scripts/local-priority-class.yaml; a
// workspace that then finds no room preempts one and becomes Ready, while the placeholder the
// Deployment starts again waits (on GKE the autoscaler adds a node for it); Warm with the
// sizes at zero removes them all.
func TestIntegrationWarmPlaceholdersArePreempted(t *testing.T) {
	ctx := t.Context()
	c, cs := newCluster(t, func(o *Options) {
		o.NodeSelector = map[string]string{warmNodeLabel: "true"}
		o.Tolerations = []corev1.Toleration{{Key: warmNodeLabel, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
		o.WarmPlaceholders, o.WarmPrepull = 4, true
		ws := testWorkspace()
		o.WorkspaceImage, o.WorkspaceCPU, o.WorkspaceMemory = ws.Image, resource.MustParse(ws.CPU), resource.MustParse(ws.Memory)
	})
	o := c.Options()
	createPriorityClass(t, cs)
	// 4 x 250m for the placeholders and 1m for the pre-pull: full.
	node := warmNode(t, cs, o.Namespace, "1001m")
	o.NodeSelector[warmNodeLabel] = node
	o.Tolerations[0].Value = node
	c = NewCluster(cs, o)

	for range 2 { // idempotent: a second sweep changes nothing
		if err := c.Warm(ctx); err != nil {
			t.Fatal(err)
		}
	}
	took := eventually(t, 60*time.Second, "4 placeholders and the pre-pull running on the node", func() (bool, error) {
		ph, pending, err := warmPods(t, cs, o.Namespace, ComponentPlaceholder, node)
		if err != nil {
			return false, err
		}
		pp, _, err := warmPods(t, cs, o.Namespace, ComponentPrepull, node)
		return ph == 4 && pending == 0 && pp == 1, err
	})
	t.Logf("warm path up in %v", took.Round(time.Millisecond))
	pods, err := cs.CoreV1().Pods(o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelComponent + "=" + ComponentPlaceholder})
	if err != nil {
		t.Fatal(err)
	}
	if p := pods.Items[0]; p.Spec.Priority == nil || *p.Spec.Priority != -10 || *p.Spec.PreemptionPolicy != corev1.PreemptNever {
		t.Fatalf("placeholder priority %v policy %v, want -10 and Never", p.Spec.Priority, p.Spec.PreemptionPolicy)
	}

	ws := newWorkspace(t)
	start := time.Now()
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "the workspace Ready on the full node", func() (bool, error) {
		return observe(t, c, ws.ID).Ready, nil
	})
	t.Logf("workspace Ready %v after its create, preempting a placeholder", time.Since(start).Round(time.Millisecond))
	wsPods, err := cs.CoreV1().Pods(o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelSession + "=" + ws.ID})
	if err != nil || len(wsPods.Items) != 1 || wsPods.Items[0].Spec.NodeName != node {
		t.Fatalf("workspace pods %v: %+v", err, wsPods)
	}
	eventually(t, 30*time.Second, "3 placeholders left on the node and the 4th waiting", func() (bool, error) {
		ph, pending, err := warmPods(t, cs, o.Namespace, ComponentPlaceholder, node)
		return ph == 3 && pending == 1, err
	})

	o.WarmPlaceholders, o.WarmPrepull = 0, false
	for range 2 {
		if err := NewCluster(cs, o).Warm(ctx); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "the warm path's pods gone", func() (bool, error) {
		pods, err := cs.CoreV1().Pods(o.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: LabelComponent + " in (" + ComponentPlaceholder + "," + ComponentPrepull + ")"})
		return err == nil && len(pods.Items) == 0, err
	})
	if !observe(t, c, ws.ID).Ready {
		t.Error("the workspace is no longer Ready")
	}
}

// createPriorityClass creates the placeholders' PriorityClass from the local cluster's file
// (cluster-scoped: the package's tests share it).
func createPriorityClass(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	raw, err := os.ReadFile("../../scripts/local-priority-class.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pc schedulingv1.PriorityClass
	if err := yaml.Unmarshal(raw, &pc); err != nil {
		t.Fatal(err)
	}
	if pc.Name != DefaultPlaceholderPriorityClass || pc.Value != -10 || pc.GlobalDefault {
		t.Fatalf("PriorityClass %s value %d global %v", pc.Name, pc.Value, pc.GlobalDefault)
	}
	if _, err := cs.SchedulingV1().PriorityClasses().Create(t.Context(), &pc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// warmNode creates a kwok node named as the test's namespace with cpu allocatable CPU,
// labelled and tainted warmNodeLabel=<its name> so only this test's pods go there, and waits
// until it is Ready. It is deleted when the test ends.
func warmNode(t *testing.T, cs kubernetes.Interface, ns, cpu string) string {
	t.Helper()
	name := ns // unique, and short enough for a label value
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("100Gi")}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": name, warmNodeLabel: name}},
		Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: warmNodeLabel, Value: name, Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Allocatable: res, Capacity: res},
	}
	if _, err := cs.CoreV1().Nodes().Create(t.Context(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() is canceled before cleanups run
		if err := cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting node %s: %v", name, err)
		}
	})
	eventually(t, 30*time.Second, "node "+name+" Ready", func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, nil
			}
		}
		return false, errors.New("no Ready condition yet")
	})
	return name
}

// warmPods counts the component's pods: Ready on node, and pending (not bound to a node).
func warmPods(t *testing.T, cs kubernetes.Interface, ns, component, node string) (ready, pending int, err error) {
	t.Helper()
	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: LabelComponent + "=" + component})
	if err != nil {
		return 0, 0, err
	}
	for _, p := range pods.Items {
		switch {
		case p.DeletionTimestamp != nil:
		case p.Spec.NodeName == "":
			pending++
		case p.Spec.NodeName == node && podReady(p):
			ready++
		}
	}
	return ready, pending, nil
}
