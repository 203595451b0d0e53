package kube

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/rest"
)

// With the real API server, the typed clients of NewClients speak protobuf (an apply's answer,
// a list, a watch's events), and what they read is what was written; the metadata client's
// lists still work beside them. The recorder is not observe's wire: that one reads each answer
// whole, which a watch's never is.
func TestIntegrationClientsSpeakProtobuf(t *testing.T) {
	k, ns := env.Namespace(t)
	ctx := t.Context()
	type exchange struct{ method, path, accept, answer string }
	var mu sync.Mutex
	var seen []exchange
	cfg := rest.CopyConfig(k.Config)
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			res, err := next.RoundTrip(req)
			if err == nil {
				mu.Lock()
				seen = append(seen, exchange{req.Method, req.URL.Path + "?" + req.URL.RawQuery, req.Header.Get("Accept"), res.Header.Get("Content-Type")})
				mu.Unlock()
			}
			return res, err
		})
	})
	cl, err := NewClients(cfg, Budgets{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cl.Read.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=probe"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cm := corev1ac.ConfigMap("probe", ns).WithData(map[string]string{"file": "bytes"})
	if _, err := cl.Write.CoreV1().ConfigMaps(ns).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: FieldManager}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		if got, ok := ev.Object.(*corev1.ConfigMap); !ok || got.Data["file"] != "bytes" {
			t.Fatalf("watch event %s %#v, want the applied ConfigMap", ev.Type, ev.Object)
		}
	case <-time.After(2 * time.Minute): // a bound, not a pace: the event comes at once
		t.Fatal("the watch sent no event for the applied ConfigMap")
	}
	l, err := cl.Read.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range l.Items {
		found = found || c.Name == "probe" && c.Data["file"] == "bytes"
	}
	if !found {
		t.Fatalf("list %v, want the applied ConfigMap", l.Items)
	}
	if _, err := cl.Metadata.Resource(corev1.SchemeGroupVersion.WithResource("configmaps")).Namespace(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	typed, meta := 0, 0
	for _, e := range seen {
		switch {
		case strings.Contains(e.accept, "as=PartialObjectMetadataList"):
			meta++
		case strings.Contains(e.path, "/configmaps"):
			typed++
			if !strings.HasPrefix(e.answer, runtime.ContentTypeProtobuf) {
				t.Errorf("typed %s %s (Accept %q) answered in %q, want protobuf", e.method, e.path, e.accept, e.answer)
			}
		}
	}
	if typed < 3 || meta != 1 {
		t.Fatalf("%d typed and %d metadata exchanges seen, want the watch, the apply and the list, and one metadata list: %v", typed, meta, seen)
	}
}
