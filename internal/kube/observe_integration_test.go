package kube

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// exchange is one request to the API server and the body it answered with.
type exchange struct {
	method, path, limit, cont, accept string
	body                              []byte
}

// wire records every exchange of the clients whose transports it wraps, as the API server
// answered.
type wire struct {
	mu   sync.Mutex
	seen []exchange
}

func (w *wire) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) { return w.record(next, req) })
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (w *wire) record(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	res, err := next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	q := req.URL.Query()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, exchange{method: req.Method, path: req.URL.Path, limit: q.Get("limit"),
		cont: q.Get("continue"), accept: req.Header.Get("Accept"), body: body})
	return res, nil
}

// lists returns the recorded lists of a resource (plural) in ns.
func (w *wire) lists(ns, resource string) []exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []exchange
	for _, e := range w.seen {
		if e.method == http.MethodGet && strings.HasSuffix(e.path, "/namespaces/"+ns+"/"+resource) {
			out = append(out, e)
		}
	}
	return out
}

// ObserveAll on the real API server, with more sessions than fit in a page: every kind is
// listed page by page and every session comes back whole, and the Secrets are listed as
// metadata only, so no password crosses the wire in a list (a Get of one still carries it,
// which shows the check would see one).
func TestIntegrationObserveAllPagesAndSecretMetadata(t *testing.T) {
	k, ns := env.Namespace(t)
	ctx := t.Context()
	o := testOptions()
	o.Namespace, o.StorageClass, o.BackupPVC = ns, "", backupPVC
	o.ListPageSize = 3
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := &wire{}
	cfg := rest.CopyConfig(k.Config)
	cfg.Wrap(rec.wrap)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClusterWithMetadata(cs, md, o)

	const sessions = 4 // more than a page of each kind
	want := map[string]session.Workspace{}
	for range sessions {
		ws := newWorkspace(t)
		ws.Password = "pw-" + ws.ID + "-not-for-lists"
		if err := c.Apply(ctx, ws); err != nil {
			t.Fatal(err)
		}
		want[ws.ID] = ws
	}

	// Every session whole, its pod (the Deployment controller's, on a kwok node) included.
	var all []*session.Observed
	eventually(t, time.Minute, "every session observed with its pod", func() (bool, error) {
		var err error
		all, err = c.ObserveAll(ctx)
		if err != nil || len(all) != sessions {
			return false, err
		}
		for _, obs := range all {
			if obs.Pods != 1 {
				return false, nil
			}
		}
		return true, nil
	})
	for _, obs := range all {
		ws, ok := want[obs.ID]
		if !ok || !obs.Complete || obs.UserID != ws.UserID || !obs.Created.Equal(ws.CreatedAt) {
			t.Errorf("observed %+v, want every kind of %+v", obs, ws)
		}
	}

	for _, resource := range []string{"persistentvolumeclaims", "deployments", "services", "ingresses",
		"networkpolicies", "secrets", "pods"} {
		lists := rec.lists(ns, resource)
		if !slices.ContainsFunc(lists, func(l exchange) bool { return l.cont != "" }) {
			t.Errorf("%s: %d list requests, none for a second page", resource, len(lists))
		}
		for _, l := range lists {
			if l.limit != "3" {
				t.Errorf("%s listed with limit %q, want 3", resource, l.limit)
			}
		}
	}
	secretLists := rec.lists(ns, "secrets")
	for _, l := range secretLists {
		if !strings.Contains(l.accept, "as=PartialObjectMetadataList") {
			t.Errorf("Secrets listed with Accept %q, want metadata only", l.accept)
		}
		for _, ws := range want {
			if leaks(l.body, ws.Password) {
				t.Errorf("a Secret list carried the password of %s", ws.ID)
			}
		}
	}

	// The check sees a password where one is sent: reading it by name.
	var ws session.Workspace
	for _, w := range want {
		ws = w
		break
	}
	if pw, err := c.Password(ctx, ws.ID); err != nil || pw != ws.Password {
		t.Fatalf("Password = %q, %v", pw, err)
	}
	n, _ := NamesFor(ws.ID)
	found := false
	rec.mu.Lock()
	for _, e := range rec.seen {
		found = found || (strings.HasSuffix(e.path, "/secrets/"+n.Auth) && e.method == http.MethodGet && leaks(e.body, ws.Password))
	}
	rec.mu.Unlock()
	if !found {
		t.Error("the Get of the Secret did not show its password on the wire: the check above proves nothing")
	}
}

// leaks reports whether body holds password, as is or base64-encoded (Secret data in JSON).
func leaks(body []byte, password string) bool {
	return bytes.Contains(body, []byte(password)) ||
		bytes.Contains(body, []byte(base64.StdEncoding.EncodeToString([]byte(password))))
}
