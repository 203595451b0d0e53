package kube

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// A bad session id is refused by every Cluster method before any API call.
func TestClusterRefusesBadIDsWithoutCallingTheAPI(t *testing.T) {
	cs := fake.NewClientset()
	var calls []string
	cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls = append(calls, a.GetVerb()+" "+a.GetResource().Resource)
		return true, nil, errors.New("no API call expected")
	})
	c := NewCluster(cs, testOptions())
	ctx := context.Background()
	for _, id := range badIDs {
		ws := testWorkspace()
		ws.ID = id
		for name, call := range map[string]func() error{
			"Apply":           func() error { return c.Apply(ctx, ws) },
			"Scale":           func() error { return c.Scale(ctx, id, 1) },
			"Observe":         func() error { _, err := c.Observe(ctx, id); return err },
			"Password":        func() error { _, err := c.Password(ctx, id); return err },
			"StartBackup":     func() error { _, err := c.StartBackup(ctx, id, 1); return err },
			"BackupStatus":    func() error { _, err := c.BackupStatus(ctx, id, 1); return err },
			"DeleteWorkspace": func() error { return c.DeleteWorkspace(ctx, id, true) },
		} {
			if err := call(); session.FieldOf(err) != "uuid" {
				t.Errorf("%s(%q): err = %v, want session.CheckID's error", name, id, err)
			}
		}
	}
	// Bad input other than the id is refused before any call too.
	ws := testWorkspace()
	ws.Labels = map[string]string{"app.kubernetes.io/managed-by": "me"}
	if err := c.Apply(ctx, ws); session.FieldOf(err) != "labels" {
		t.Errorf("Apply with a reserved label: %v", err)
	}
	ws = testWorkspace()
	ws.Storage = "much"
	if err := c.Apply(ctx, ws); session.FieldOf(err) != "storage" {
		t.Errorf("Apply with a bad size: %v", err)
	}
	if err := c.Scale(ctx, "ab12cd34", 2); session.FieldOf(err) != "replicas" {
		t.Errorf("Scale(2): %v", err)
	}
	if len(calls) > 0 {
		t.Errorf("API calls were made: %v", calls)
	}
}

func TestErrorKinds(t *testing.T) {
	c := NewCluster(fake.NewClientset(), testOptions())
	gr := schema.GroupResource{Resource: "deployments"}
	for _, tc := range []struct {
		err  error
		want session.Kind
	}{
		{apierrors.NewServiceUnavailable("down"), session.KindUnavailable},
		{apierrors.NewTooManyRequests("slow down", 1), session.KindUnavailable},
		{apierrors.NewInternalError(errors.New("boom")), session.KindUnavailable},
		{errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), session.KindUnavailable},
		{apierrors.NewForbidden(gr, "x", errors.New("rbac")), session.KindInternal},
		{apierrors.NewConflict(gr, "x", errors.New("conflict")), session.KindInternal},
		{context.Canceled, session.KindInternal},
	} {
		err := c.kubeError("apply", "Deployment", "vs-code-ab12cd34", tc.err)
		if got := session.KindOf(err); got != tc.want {
			t.Errorf("%v: kind %s, want %s", tc.err, got, tc.want)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%v is not in the chain of %v", tc.err, err)
		}
		if !strings.Contains(err.Error(), "hyperbola/vs-code-ab12cd34") {
			t.Errorf("%v does not say what it was doing", err)
		}
	}
	// Scale and Password turn a missing object into the session's NotFound.
	if err := c.Scale(context.Background(), "ab12cd34", 0); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Scale of a missing Deployment: %v", err)
	}
	if _, err := c.Password(context.Background(), "ab12cd34"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Password of a missing Secret: %v", err)
	}
	if _, err := c.StartBackup(context.Background(), "ab12cd34", 1); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("StartBackup without a claim: %v", err)
	}
	if b, err := c.BackupStatus(context.Background(), "ab12cd34", 1); err != nil || b.Phase != session.BackupMissing {
		t.Errorf("BackupStatus of a missing Job: %+v, %v", b, err)
	}
	// Nothing at all is an empty observation, not an error.
	obs, err := c.Observe(context.Background(), "ab12cd34")
	if err != nil || obs.Exists() || obs.ID != "ab12cd34" {
		t.Errorf("Observe of nothing: %+v, %v", obs, err)
	}
}

func TestPodProblem(t *testing.T) {
	waiting := func(reason, msg string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{
			ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}}}
	}
	unschedulable := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient cpu."}}}}
	evicted := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{
		Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory."}}
	quota := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "exceeded quota"}}}}
	for _, tc := range []struct {
		dep  *appsv1.Deployment
		pods []corev1.Pod
		want string
	}{
		{nil, []corev1.Pod{waiting("ContainerCreating", "")}, ""},
		{nil, []corev1.Pod{waiting("ImagePullBackOff", `Back-off pulling image "nope"`)}, `pod p container code-server: ImagePullBackOff: Back-off pulling image "nope"`},
		{nil, []corev1.Pod{waiting("CrashLoopBackOff", "back-off 5m0s")}, "pod p container code-server: CrashLoopBackOff: back-off 5m0s"},
		{nil, []corev1.Pod{unschedulable}, "pod p is unschedulable: 0/1 nodes are available: 1 Insufficient cpu."},
		{nil, []corev1.Pod{evicted}, "pod p failed: Evicted: The node was low on resource: memory."},
		{quota, nil, "FailedCreate: exceeded quota"},
	} {
		if got := podProblem(tc.dep, tc.pods); got != tc.want {
			t.Errorf("podProblem = %q, want %q", got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	ws, o := testWorkspace(), testOptions()
	ctx := context.Background()
	cs := fake.NewClientset()
	c := NewCluster(cs, o)
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	obs, err := c.Observe(ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !obs.Complete || len(obs.Kinds) != 6 {
		t.Errorf("kinds = %v, complete %v", obs.Kinds, obs.Complete)
	}
	if obs.UserID != ws.UserID || !obs.Created.Equal(ws.CreatedAt) || obs.IdleTimeout != ws.IdleTimeout {
		t.Errorf("owner %q created %v idle %v", obs.UserID, obs.Created, obs.IdleTimeout)
	}
	if len(obs.Labels) != 2 || obs.Labels["team"] != "web" {
		t.Errorf("labels = %v", obs.Labels)
	}
	if obs.Storage != "5Gi" || obs.CPU != "250m" || obs.Memory != "256Mi" || obs.Image != ws.Image || obs.DesiredReplicas != 1 {
		t.Errorf("observed %+v", obs)
	}
	if obs.Ready {
		t.Error("ready without a ready replica")
	}
	// Without a created-at annotation, the oldest object's creation time.
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got := created([]metav1.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(old.Add(time.Hour))}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(old)}},
	})
	if !got.Equal(old) {
		t.Errorf("created = %v, want %v", got, old)
	}
	all, err := c.ObserveAll(ctx)
	if err != nil || len(all) != 1 || all[0].ID != ws.ID {
		t.Errorf("ObserveAll = %v, %v", all, err)
	}
}

func TestRESTConfig(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	const cfg = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:6443"}
- name: b
  cluster: {server: "https://127.0.0.2:6443"}
users:
- name: u
  user: {token: t0k3n}
contexts:
- name: one
  context: {cluster: a, user: u}
- name: two
  context: {cluster: b, user: u}
current-context: one
`
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for ctxName, host := range map[string]string{"": "https://127.0.0.1:6443", "two": "https://127.0.0.2:6443"} {
		rc, err := RESTConfig(kc, ctxName)
		if err != nil {
			t.Fatal(err)
		}
		if rc.Host != host || rc.QPS != 100 || rc.Burst != 200 || rc.UserAgent != "hyperbola" {
			t.Errorf("context %q: host %s qps %v burst %d agent %q", ctxName, rc.Host, rc.QPS, rc.Burst, rc.UserAgent)
		}
	}
	if _, err := RESTConfig(kc, "three"); err == nil {
		t.Error("an unknown context was accepted")
	}
	if _, err := RESTConfig(filepath.Join(t.TempDir(), "missing"), ""); err == nil {
		t.Error("a missing kubeconfig was accepted")
	}
}

func TestFinished(t *testing.T) {
	job := func(conds ...batchv1.JobConditionType) *batchv1.Job {
		j := &batchv1.Job{}
		for _, c := range conds {
			j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: c, Status: corev1.ConditionTrue})
		}
		return j
	}
	for _, tc := range []struct {
		job  *batchv1.Job
		want bool
	}{
		{job(), false},
		{job(batchv1.JobSuspended), false},
		{job(batchv1.JobSuccessCriteriaMet), true}, // Complete follows once the pods are gone
		{job(batchv1.JobSuccessCriteriaMet, batchv1.JobComplete), true},
		{job(batchv1.JobFailureTarget), true},
		{job(batchv1.JobFailureTarget, batchv1.JobFailed), true},
	} {
		if got := finished(tc.job); got != tc.want {
			t.Errorf("finished(%v) = %v", tc.job.Status.Conditions, got)
		}
	}
}
