package kube

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
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
