package kube

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

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

// pagedPods serves pods page by page as the API server does: Limit at a time, a continue
// token naming the next offset; expire lists the continue tokens to answer with 410 Expired
// (each once).
func pagedPods(t *testing.T, pods []corev1.Pod, limit int64, expire ...string) (func(context.Context, metav1.ListOptions) (*corev1.PodList, error), *[]string) {
	var calls []string
	expired := map[string]bool{}
	for _, e := range expire {
		expired[e] = true
	}
	return func(_ context.Context, o metav1.ListOptions) (*corev1.PodList, error) {
		calls = append(calls, o.Continue)
		if o.Limit != limit {
			t.Errorf("Limit = %d, want %d", o.Limit, limit)
		}
		if expired[o.Continue] {
			delete(expired, o.Continue)
			return nil, apierrors.NewResourceExpired("the provided continue parameter is too old")
		}
		from := 0
		if o.Continue != "" {
			from, _ = strconv.Atoi(o.Continue)
		}
		to := min(from+int(o.Limit), len(pods))
		l := &corev1.PodList{Items: pods[from:to]}
		if to < len(pods) {
			l.Continue = strconv.Itoa(to)
		}
		return l, nil
	}, &calls
}

func TestListStepPages(t *testing.T) {
	var pods []corev1.Pod
	for i := range 7 {
		pods = append(pods, corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i)}})
	}
	names := func(ps []corev1.Pod) (out []string) {
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	want := names(pods)
	o := testOptions()
	o.ListPageSize = 3
	c := NewCluster(fake.NewClientset(), o)
	for _, tc := range []struct {
		name      string
		expire    []string
		wantCalls []string
		wantErr   bool
	}{
		{name: "every page", wantCalls: []string{"", "3", "6"}},
		{name: "expired once: restarted", expire: []string{"6"}, wantCalls: []string{"", "3", "6", "", "3", "6"}},
		{name: "expired twice: an error", expire: []string{"3", "6"}, wantCalls: []string{"", "3", "", "3", "6"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, calls := pagedPods(t, pods, 3, tc.expire...)
			var got []corev1.Pod
			err := listStep(c, "Pods", "a=b", list, podItems, &got)(t.Context())
			if !slices.Equal(*calls, tc.wantCalls) {
				t.Errorf("continue tokens asked = %q, want %q", *calls, tc.wantCalls)
			}
			if tc.wantErr {
				if !apierrors.IsResourceExpired(err) || got != nil {
					t.Errorf("err = %v (got %d pods), want the 410 and nothing", err, len(got))
				}
				return
			}
			if err != nil || !slices.Equal(names(got), want) {
				t.Errorf("got %v, %v; want %v", names(got), err, want)
			}
		})
	}
	// The default page size is sent when none is set.
	c = NewCluster(fake.NewClientset(), testOptions())
	list, _ := pagedPods(t, pods, DefaultListPageSize)
	var got []corev1.Pod
	if err := listStep(c, "Pods", "a=b", list, podItems, &got)(t.Context()); err != nil || len(got) != len(pods) {
		t.Errorf("default page size: %d pods, %v", len(got), err)
	}
}

// With a metadata client, Observe and ObserveAll list Secrets through it (metadata only) and
// never list them through the typed client; every typed list is paged (the metadata fake drops
// Limit: the integration test checks the Secrets' pages on the wire).
func TestObserveListsSecretsAsMetadataOnly(t *testing.T) {
	ws, o := testWorkspace(), testOptions()
	o.ListPageSize = 2
	ctx := context.Background()
	cs := fake.NewClientset()
	if err := NewCluster(cs, o).Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	n, _ := NamesFor(ws.ID)
	sec, err := cs.CoreV1().Secrets(o.Namespace).Get(ctx, n.Auth, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	md := metadatafake.NewSimpleMetadataClient(scheme, &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: sec.ObjectMeta,
	})
	limits := map[string]int64{}
	record := func(a k8stesting.Action) (bool, runtime.Object, error) {
		if l, ok := a.(k8stesting.ListActionImpl); ok {
			limits[a.GetResource().Resource] = l.ListOptions.Limit
		}
		return false, nil, nil
	}
	cs.PrependReactor("list", "*", record)
	cs.PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("secrets listed with their data")
	})
	c := NewClusterWithMetadata(cs, md, o)
	obs, err := c.Observe(ctx, ws.ID)
	if err != nil || !obs.Complete || obs.UserID != ws.UserID {
		t.Fatalf("Observe = %+v, %v", obs, err)
	}
	all, err := c.ObserveAll(ctx)
	if err != nil || len(all) != 1 || !slices.Contains(all[0].Kinds, session.ObjectSecret) {
		t.Fatalf("ObserveAll = %v, %v", all, err)
	}
	want := map[string]int64{"persistentvolumeclaims": 2, "deployments": 2, "services": 2, "ingresses": 2,
		"networkpolicies": 2, "pods": 2}
	if !maps.Equal(limits, want) {
		t.Errorf("typed list limits = %v, want %v", limits, want)
	}
	if a := md.Actions(); len(a) != 2 || !a[0].Matches("list", "secrets") || !a[1].Matches("list", "secrets") {
		t.Errorf("metadata client actions = %v, want a Secret list for each observation", a)
	}
}
