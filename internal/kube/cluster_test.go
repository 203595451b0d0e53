package kube

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
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
			"StartRestore":    func() error { _, err := c.StartRestore(ctx, id, 1, archiveA); return err },
			"RestoreStatus":   func() error { _, err := c.RestoreStatus(ctx, id, 1); return err },
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

// Without wake on access a workspace's route does not follow its state: Route makes no call
// (the one it would make changes nothing), in either routing. With it, Route applies the route.
func TestRouteWritesOnlyWhatSwitches(t *testing.T) {
	for name, o := range map[string]Options{"ingress": testOptions(), "gateway": gatewayOptions()} {
		cs := fake.NewClientset()
		var calls []string
		cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
			calls = append(calls, a.GetVerb()+" "+a.GetResource().Resource)
			return false, nil, nil
		})
		o.ActivatorService = ""
		ws := testWorkspace()
		ws.Activator = true
		if err := NewCluster(cs, o).Route(context.Background(), ws); err != nil || len(calls) > 0 {
			t.Errorf("%s, wake on access off: Route = %v, calls %v; want none", name, err, calls)
		}
	}
	cs := fake.NewClientset()
	var calls []string
	cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls = append(calls, a.GetVerb()+" "+a.GetResource().Resource)
		return true, nil, nil
	})
	if err := NewCluster(cs, testOptions()).Route(context.Background(), testWorkspace()); err != nil || len(calls) != 1 || calls[0] != "patch ingresses" {
		t.Errorf("wake on access on: Route = %v, calls %v; want one apply of the Ingress", err, calls)
	}
}
