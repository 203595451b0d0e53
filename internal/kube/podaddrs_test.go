package kube

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// workspacePod is a pod of session id's workspace at ip, Ready or not.
func workspacePod(ns, name, id, ip string, ready bool, created time.Time) *corev1.Pod {
	l, _ := SelectorLabels(id, ComponentWorkspace)
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l, CreationTimestamp: metav1.NewTime(created)},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: cond}}},
	}
}

func TestWorkspacePodIPs(t *testing.T) {
	ns := testOptions().Namespace
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	deleting := workspacePod(ns, "vs-code-dd000000-x", "dd000000", "10.0.0.4", true, t0)
	deleting.DeletionTimestamp = &metav1.Time{Time: t0}
	deleting.Finalizers = []string{"test/keep"}
	pending := workspacePod(ns, "vs-code-ee000000-x", "ee000000", "", false, t0)
	pending.Status.Phase = corev1.PodPending
	backup := workspacePod(ns, "vs-code-ff000000-backup", "ff000000", "10.0.0.6", true, t0)
	backup.Labels[LabelComponent] = ComponentBackup
	other := workspacePod("elsewhere", "vs-code-gg000000-x", "gg000000", "10.0.0.7", true, t0)
	cs := fake.NewClientset(
		workspacePod(ns, "vs-code-aa000000-x", "aa000000", "10.0.0.1", true, t0),
		workspacePod(ns, "vs-code-bb000000-x", "bb000000", "10.0.0.2", false, t0), // starting: not Ready
		// a replacement overlapping its predecessor: the newer pod wins, whatever the order
		workspacePod(ns, "vs-code-cc000000-new", "cc000000", "10.0.0.32", true, t0.Add(time.Minute)),
		workspacePod(ns, "vs-code-cc000000-old", "cc000000", "10.0.0.31", true, t0),
		deleting, pending, backup, other,
		workspacePod(ns, "vs-code-hh000000-x", "hh000000", "fd00::8", true, t0),
	)
	got, err := NewCluster(cs, testOptions()).WorkspacePodIPs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"aa000000": "10.0.0.1", "cc000000": "10.0.0.32", "hh000000": "fd00::8"}
	if !maps.Equal(got, want) {
		t.Fatalf("pod IPs %v, want %v", got, want)
	}
	lists := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "list" {
			lists++
			if sel := a.(k8stesting.ListAction).GetListRestrictions().Labels.String(); sel != WorkspacePodSelector() {
				t.Errorf("listed with %q", sel)
			}
		}
	}
	if lists != 1 || len(cs.Actions()) != 1 {
		t.Errorf("%d lists in %d requests, want one list", lists, len(cs.Actions()))
	}
}

// The list is paged: every page is read, with the continue token of the one before.
func TestWorkspacePodIPsPages(t *testing.T) {
	ns := testOptions().Namespace
	cs := fake.NewClientset()
	var tokens []string
	cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts := a.(k8stesting.ListActionImpl).ListOptions
		if opts.Limit != DefaultListPageSize {
			return true, nil, fmt.Errorf("limit %d", opts.Limit)
		}
		tokens = append(tokens, opts.Continue)
		page := len(tokens)
		l := &corev1.PodList{Items: []corev1.Pod{*workspacePod(ns, fmt.Sprintf("p%d", page), fmt.Sprintf("a000000%d", page),
			fmt.Sprintf("10.0.0.%d", page), true, time.Unix(0, 0))}}
		if page < 3 {
			l.Continue = fmt.Sprintf("next-%d", page)
		}
		return true, l, nil
	})
	got, err := NewCluster(cs, testOptions()).WorkspacePodIPs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["a0000003"] != "10.0.0.3" || fmt.Sprint(tokens) != "[ next-1 next-2]" {
		t.Fatalf("pages read with %q: %v", tokens, got)
	}
}

func TestWorkspacePodIPsUnavailable(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	_, err := NewCluster(cs, testOptions()).WorkspacePodIPs(context.Background())
	if !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("err %v, want unavailable", err)
	}
}
