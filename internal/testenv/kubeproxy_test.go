package testenv_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Cluster: true})
}

// patience bounds every wait: far above what a call takes on a loaded machine.
const patience = 2 * time.Minute

// proxied returns a client through a fresh proxy, a direct client and the test's namespace.
func proxied(t *testing.T) (*testenv.KubeProxy, kubernetes.Interface, kubernetes.Interface, string) {
	t.Helper()
	k, ns := env.Namespace(t)
	p, cfg := testenv.StartKubeProxy(t, k.Config)
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, c, k.Client, ns
}

func configMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "v"}}
}

// An error rule answers instead of the API server: the client sees the status as the API
// server's own error, and nothing was created.
func TestKubeProxyErrorRule(t *testing.T) {
	p, c, direct, ns := proxied(t)
	ctx := context.Background()
	p.Add(testenv.FaultRule{Name: "create-500", Verbs: []string{"POST"}, PathContains: "/configmaps", Status: http.StatusInternalServerError})

	_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, configMap("refused"), metav1.CreateOptions{})
	if !apierrors.IsInternalError(err) {
		t.Fatalf("create through the proxy: want an internal error, got %v", err)
	}
	if _, err := direct.CoreV1().ConfigMaps(ns).Get(ctx, "refused", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the refused create reached the API server: %v", err)
	}
	// other verbs pass
	if _, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("a list the rule does not match: %v", err)
	}
	if got := p.Injected()["create-500"]; got != 1 || p.Total() != 1 {
		t.Fatalf("injected %v (total %d), want create-500 once", p.Injected(), p.Total())
	}
}

// A stall that the client's deadline cuts short never reaches the API server: a cancelled
// request is dropped, not forwarded late.
func TestKubeProxyStallCutShort(t *testing.T) {
	p, c, direct, ns := proxied(t)
	p.Add(testenv.FaultRule{Name: "stall", Verbs: []string{"POST"}, PathContains: "/configmaps", Stall: time.Hour})

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, configMap("stalled"), metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a create stalled for an hour answered within its 300ms deadline")
	}
	if took := time.Since(start); took > patience {
		t.Fatalf("the client waited %s, past its deadline", took)
	}
	// the proxy sees the client go away, and drops the request
	deadline := time.Now().Add(patience)
	for p.Dropped() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled request was not dropped (dropped %d)", p.Dropped())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := direct.CoreV1().ConfigMaps(ns).Get(context.Background(), "stalled", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the cut-short create reached the API server: %v", err)
	}
	if p.Injected()["stall"] != 1 {
		t.Fatalf("injected %v, want stall once", p.Injected())
	}
}

// A stall shorter than the client's patience delays the call, which then lands.
func TestKubeProxyStallThenForward(t *testing.T) {
	p, c, direct, ns := proxied(t)
	p.Add(testenv.FaultRule{Name: "slow", Verbs: []string{"POST"}, PathContains: "/configmaps", Stall: 200 * time.Millisecond})
	start := time.Now()
	if _, err := c.CoreV1().ConfigMaps(ns).Create(context.Background(), configMap("slow"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("the call took %s: it was not stalled", took)
	}
	if _, err := direct.CoreV1().ConfigMaps(ns).Get(context.Background(), "slow", metav1.GetOptions{}); err != nil {
		t.Fatalf("the stalled create did not land: %v", err)
	}
}

// Every acts on every Nth matching request and Limit stops it after so many.
func TestKubeProxyEveryAndLimit(t *testing.T) {
	p, c, _, ns := proxied(t)
	ctx := context.Background()
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, configMap("x"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	remove := p.Add(testenv.FaultRule{Name: "every2", Verbs: []string{"GET"}, PathContains: "/configmaps/x", Status: http.StatusServiceUnavailable, Every: 2, Limit: 2})
	var failed []int
	for i := 1; i <= 8; i++ {
		_, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "x", metav1.GetOptions{})
		switch {
		case apierrors.IsServiceUnavailable(err):
			failed = append(failed, i)
		case err != nil:
			t.Fatalf("get %d: %v", i, err)
		}
	}
	if len(failed) != 2 || failed[0] != 2 || failed[1] != 4 {
		t.Fatalf("failed gets %v, want [2 4] (every 2nd, at most 2)", failed)
	}
	if got := p.Injected()["every2"]; got != 2 {
		t.Fatalf("injected %d, want 2", got)
	}
	remove()
	p.Add(testenv.FaultRule{Name: "never", Verbs: []string{"GET"}, Status: http.StatusInternalServerError, Probability: 1e-12})
	for i := range 5 {
		if _, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "x", metav1.GetOptions{}); err != nil {
			t.Fatalf("get %d after the rule was removed: %v", i, err)
		}
	}
	if p.Total() != 2 {
		t.Fatalf("total %d after the rule was removed, want 2", p.Total())
	}
}

// Watches pass through untouched by a rule that matches everything else, and see events.
func TestKubeProxyWatchPassesThrough(t *testing.T) {
	p, c, direct, ns := proxied(t)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	p.Add(testenv.FaultRule{Name: "all", Status: http.StatusInternalServerError})
	w, err := c.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch through the proxy: %v", err)
	}
	defer w.Stop()
	if _, err := direct.CoreV1().ConfigMaps(ns).Create(ctx, configMap("seen"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case <-ctx.Done():
			t.Fatal("no event for the created ConfigMap")
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("the watch ended")
			}
			if cm, isCM := ev.Object.(*corev1.ConfigMap); ev.Type == watch.Added && isCM && cm.Name == "seen" {
				if p.Total() != 0 {
					t.Fatalf("the watch was acted on: %v", p.Injected())
				}
				// and ordinary calls are still refused
				if _, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "seen", metav1.GetOptions{}); !apierrors.IsInternalError(err) {
					t.Fatalf("a get with the catch-all rule: %v", errors.Unwrap(err))
				}
				return
			}
		}
	}
}

// Probability acts on about that share of the matching requests.
func TestKubeProxyProbability(t *testing.T) {
	p, c, _, ns := proxied(t)
	ctx := context.Background()
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, configMap("x"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p.Add(testenv.FaultRule{Name: "half", Verbs: []string{"GET"}, PathContains: "/configmaps/x", Status: http.StatusInternalServerError, Probability: 0.5})
	const n = 200
	failed := 0
	for i := range n {
		_, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "x", metav1.GetOptions{})
		switch {
		case apierrors.IsInternalError(err):
			failed++
		case err != nil:
			t.Fatalf("get %d: %v", i, err)
		}
	}
	if failed < n/4 || failed > 3*n/4 || p.Injected()["half"] != failed {
		t.Fatalf("%d of %d gets failed (injected %v), want about half", failed, n, p.Injected())
	}
}
