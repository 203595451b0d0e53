package kube

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// warmOptions are testOptions with the warm path on, on a workspace node pool.
func warmOptions() Options {
	o := testOptions()
	o.WarmPlaceholders = 3
	o.WarmPrepull = true
	o.WorkspaceImage = "codercom/code-server:4.96.4"
	o.WorkspaceCPU = resource.MustParse("250m")
	o.WorkspaceMemory = resource.MustParse("256Mi")
	o.NodeSelector = map[string]string{"hyperbola.dev/pool": "workspaces"}
	o.Tolerations = []corev1.Toleration{{Key: "hyperbola.dev/pool", Operator: corev1.TolerationOpEqual, Value: "workspaces", Effect: corev1.TaintEffectNoSchedule}}
	return o
}

func TestGoldenPlaceholderDeployment(t *testing.T) {
	golden(t, "placeholder-deployment", PlaceholderDeployment(warmOptions()), nil, &appsv1.Deployment{})
}

func TestGoldenPrepullDaemonSet(t *testing.T) {
	golden(t, "prepull-daemonset", PrepullDaemonSet(warmOptions()), nil, &appsv1.DaemonSet{})
}

// A placeholder stands in for a default workspace: its requests are the workspace's, where the
// workspace would run, below it in priority, and it is as locked down as the workspace.
func TestPlaceholderStandsInForAWorkspace(t *testing.T) {
	o := warmOptions()
	var ph, ws appsv1.Deployment
	roundTrip(t, PlaceholderDeployment(o), &ph)
	wsAC, err := Deployment(testWorkspace(), o)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, wsAC, &ws)
	pod, wpod := ph.Spec.Template.Spec, ws.Spec.Template.Spec
	c, wc := pod.Containers[0], wpod.Containers[0]
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		if got, want := c.Resources.Requests[r], wc.Resources.Requests[r]; got.Cmp(want) != 0 {
			t.Errorf("request %s = %s, a workspace's is %s", r, got.String(), want.String())
		}
	}
	if *ph.Spec.Replicas != 3 || pod.PriorityClassName != DefaultPlaceholderPriorityClass {
		t.Errorf("replicas %d, priority class %q", *ph.Spec.Replicas, pod.PriorityClassName)
	}
	if wpod.PriorityClassName != "" {
		t.Errorf("the workspace names priority class %q: it must outrank placeholders", wpod.PriorityClassName)
	}
	if pod.NodeSelector["hyperbola.dev/pool"] != "workspaces" || len(pod.Tolerations) != 1 || pod.Tolerations[0] != wpod.Tolerations[0] {
		t.Errorf("placement %v %v, a workspace's %v %v", pod.NodeSelector, pod.Tolerations, wpod.NodeSelector, wpod.Tolerations)
	}
	if c.Image != o.WorkspaceImage || c.Command[0] != "/bin/sh" {
		t.Errorf("image %q command %q", c.Image, c.Command)
	}
	if *pod.AutomountServiceAccountToken || !*pod.SecurityContext.RunAsNonRoot || *c.SecurityContext.AllowPrivilegeEscalation ||
		c.SecurityContext.Capabilities.Drop[0] != "ALL" || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("not locked down: pod %+v container %+v", pod.SecurityContext, c.SecurityContext)
	}
	if ph.Labels[LabelComponent] != ComponentPlaceholder || ph.Labels[LabelManagedBy] != ManagedByValue || ph.Labels[LabelSession] != "" {
		t.Errorf("labels %v", ph.Labels)
	}
	o.PlaceholderPriorityClass = "spare"
	roundTrip(t, PlaceholderDeployment(o), &ph)
	if ph.Spec.Template.Spec.PriorityClassName != "spare" {
		t.Errorf("priority class %q, want the configured one", ph.Spec.Template.Spec.PriorityClassName)
	}
}

// The pre-pull runs the workspace image where workspaces run, and takes next to no room.
func TestPrepullHoldsTheImageCheaply(t *testing.T) {
	o := warmOptions()
	var ds appsv1.DaemonSet
	roundTrip(t, PrepullDaemonSet(o), &ds)
	pod := ds.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 || pod.Containers[0].Image != o.WorkspaceImage {
		t.Fatalf("containers %+v", pod.Containers)
	}
	if cpu := pod.Containers[0].Resources.Requests[corev1.ResourceCPU]; cpu.Cmp(resource.MustParse("10m")) > 0 {
		t.Errorf("cpu request %s: must be tiny", cpu.String())
	}
	if pod.PriorityClassName != "" || pod.NodeSelector["hyperbola.dev/pool"] != "workspaces" || len(pod.Tolerations) != 1 {
		t.Errorf("priority %q placement %v %v", pod.PriorityClassName, pod.NodeSelector, pod.Tolerations)
	}
}

func TestValidateWarm(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*Options)
		want   string
	}{
		"on":                  {func(*Options) {}, ""},
		"off without image":   {func(o *Options) { *o = testOptions() }, ""},
		"negative":            {func(o *Options) { o.WarmPlaceholders = -1 }, "negative"},
		"no image":            {func(o *Options) { o.WorkspaceImage = "" }, "image"},
		"prepull no image":    {func(o *Options) { o.WarmPlaceholders, o.WorkspaceImage = 0, "" }, "image"},
		"no cpu":              {func(o *Options) { o.WorkspaceCPU = resource.Quantity{} }, "cpu"},
		"prepull without cpu": {func(o *Options) { o.WarmPlaceholders, o.WorkspaceCPU = 0, resource.Quantity{} }, ""},
		"bad class":           {func(o *Options) { o.PlaceholderPriorityClass = "Not_A_Name" }, "priority class"},
	} {
		t.Run(name, func(t *testing.T) {
			o := warmOptions()
			tc.mutate(&o)
			err := o.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

// Warm applies what is asked for, removes what is not, and is idempotent.
func TestWarmAppliesAndRemoves(t *testing.T) {
	cs := fake.NewClientset()
	ctx := context.Background()
	o := warmOptions()
	for range 2 {
		if err := NewCluster(cs, o).Warm(ctx); err != nil {
			t.Fatal(err)
		}
	}
	dep, err := cs.AppsV1().Deployments(o.Namespace).Get(ctx, PlaceholderName, metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != 3 {
		t.Fatalf("placeholder Deployment: %v %+v", err, dep)
	}
	if _, err := cs.AppsV1().DaemonSets(o.Namespace).Get(ctx, PrepullName, metav1.GetOptions{}); err != nil {
		t.Fatalf("pre-pull DaemonSet: %v", err)
	}

	o.WarmPlaceholders = 5
	if err := NewCluster(cs, o).Warm(ctx); err != nil {
		t.Fatal(err)
	}
	if dep, _ = cs.AppsV1().Deployments(o.Namespace).Get(ctx, PlaceholderName, metav1.GetOptions{}); *dep.Spec.Replicas != 5 {
		t.Errorf("replicas %d after resizing to 5", *dep.Spec.Replicas)
	}

	o.WarmPlaceholders, o.WarmPrepull = 0, false
	for range 2 { // the second finds nothing to delete
		if err := NewCluster(cs, o).Warm(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.AppsV1().Deployments(o.Namespace).Get(ctx, PlaceholderName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("placeholder Deployment after sizing to 0: %v", err)
	}
	if _, err := cs.AppsV1().DaemonSets(o.Namespace).Get(ctx, PrepullName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pre-pull DaemonSet after turning it off: %v", err)
	}
}

// The default (off) costs two deletes and touches nothing else; a failure is returned.
func TestWarmOffCallsAndErrors(t *testing.T) {
	cs := fake.NewClientset()
	var calls []string
	cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls = append(calls, a.GetVerb()+" "+a.GetResource().Resource)
		return false, nil, nil
	})
	if err := NewCluster(cs, testOptions()).Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || !strings.HasPrefix(calls[0], "delete ") || !strings.HasPrefix(calls[1], "delete ") {
		t.Errorf("calls %v, want two deletes", calls)
	}

	cs = fake.NewClientset()
	boom := errors.New("forbidden by RBAC")
	cs.PrependReactor("patch", "daemonsets", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
	err := NewCluster(cs, warmOptions()).Warm(context.Background())
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), PrepullName) {
		t.Errorf("Warm = %v, want the DaemonSet's error", err)
	}
}
