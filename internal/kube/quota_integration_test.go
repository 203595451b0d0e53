package kube

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// The local cluster's namespace ResourceQuota and LimitRange (scripts/local-quota.yaml, which
// scripts/run.sh applies; infra sets the same) let a workspace run and its backup Job finish:
// every container names, or is given, what the quota counts.
func TestIntegrationUnderNamespaceQuota(t *testing.T) {
	c, cs := newCluster(t)
	ctx := t.Context()
	ns := c.Options().Namespace
	raw, err := os.ReadFile("../../scripts/local-quota.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(raw, []byte("\n---\n"))
	if len(docs) != 2 {
		t.Fatalf("%d documents, want a ResourceQuota and a LimitRange", len(docs))
	}
	var quota corev1.ResourceQuota
	var lr corev1.LimitRange
	if err := yaml.Unmarshal(docs[0], &quota); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(docs[1], &lr); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().LimitRanges(ns).Create(ctx, &lr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ResourceQuotas(ns).Create(ctx, &quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// the quota admits nothing until its controller has counted the namespace once
	eventually(t, 30*time.Second, "the quota counted", func() (bool, error) {
		q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, quota.Name, metav1.GetOptions{})
		return err == nil && len(q.Status.Hard) > 0, err
	})
	ws := newWorkspace(t)
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "Ready under the quota", func() (bool, error) {
		o := observe(t, c, ws.ID)
		if o.PodProblem != "" {
			return false, errors.New(o.PodProblem)
		}
		return o.Ready, nil
	})
	if err := c.Scale(ctx, ws.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartBackup(ctx, ws.ID, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "backup under the quota", func() (bool, error) {
		b, err := c.BackupStatus(ctx, ws.ID, 1)
		if err == nil && b.Phase == session.BackupFailed {
			return false, errors.New(b.Reason)
		}
		return err == nil && b.Phase == session.BackupSucceeded, err
	})
}
