package stack

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// TestActivityCredentialEndToEnd: with HYPERBOLA_ACTIVITY_KEY and HYPERBOLA_ACTIVITY_URL, a
// session created through the API gets its credential in its Secret and the extension's
// environment in its Deployment; that credential, as the workspace would send it, reports
// its session's activity and is refused elsewhere.
func TestActivityCredentialEndToEnd(t *testing.T) {
	key := strings.Repeat("a", 48)
	st := newStack(t, map[string]string{"API_KEY": "admin-1", "HYPERBOLA_ACTIVITY_KEY": key,
		"HYPERBOLA_ACTIVITY_URL": "https://api.example.test/", "HYPERBOLA_ACTIVITY_SYNC_SECONDS": "120"})
	h, err := st.Handlers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, auth, body string) (int, string) {
		t.Helper()
		w := httptest.NewRecorder()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		r.Header.Set("Authorization", "Bearer "+auth)
		h.API.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	code, body := do("POST", "/session/create", "admin-1", `{"user_id":"u@example.com"}`)
	var sess session.Session
	if err := json.Unmarshal([]byte(body), &sess); err != nil || code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	ctx := context.Background()
	sec, err := st.Kube.CoreV1().Secrets("hyperbola").Get(ctx, "vs-code-"+sess.ID+"-auth", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok := string(sec.Data[activity.SecretKey])
	if id, ok := activity.Parse([]byte(key), tok); !ok || id != sess.ID {
		t.Fatalf("the Secret's credential %q is not the session's", tok)
	}
	dep, err := st.Kube.AppsV1().Deployments("hyperbola").Get(ctx, "vs-code-"+sess.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env[activity.EnvURL] != "https://api.example.test" || env[activity.EnvSession] != sess.ID ||
		env[activity.EnvSyncSeconds] != "120" || env[activity.EnvCPUThreshold] != "0.5" {
		t.Fatalf("workspace env %v", env)
	}
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/session/" + sess.ID + "/activity", `{"kind":"input"}`, 200},
		{"GET", "/session/" + sess.ID + "/activity", "", 200},
		{"GET", "/session/" + sess.ID + "/status", "", 403},
		{"POST", "/session/" + sess.ID + "/sleep", "", 403},
		{"GET", "/sessions", "", 403},
		{"POST", "/sweep", "", 403},
		{"GET", "/session/zz99zz99/activity", "", 404},
	} {
		if code, body := do(c.method, c.path, tok, c.body); code != c.want {
			t.Errorf("%s %s with the credential: %d, want %d: %s", c.method, c.path, code, c.want, body)
		}
	}
	if code, _ := do("GET", "/session/"+sess.ID+"/activity", activity.Token([]byte(strings.Repeat("b", 48)), sess.ID), ""); code != 401 {
		t.Errorf("another key's credential: %d, want 401", code)
	}
}

// TestActivityOptions: the key reaches the builders and the API; without a URL the builders
// get none of the extension's settings (the Deployment is built as without the feature).
func TestActivityOptions(t *testing.T) {
	key := strings.Repeat("k", 32)
	cfg := read(t, map[string]string{"HYPERBOLA_ACTIVITY_KEY": key})
	ko, err := KubeOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ao, err := APIOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if string(ko.ActivityKey) != key || string(ao.ActivityKey) != key || ko.ActivityURL != "" || ko.ActivitySyncSeconds != 0 {
		t.Fatalf("kube %+v api %+v", ko, ao)
	}
	ko, err = KubeOptions(read(t, nil))
	if err != nil || ko.ActivityKey != nil {
		t.Fatalf("no key: %v %q", err, ko.ActivityKey)
	}
	// a plain key shaped like a credential is refused, naming its variable
	if _, err := APIOptions(read(t, map[string]string{"API_KEY": "hbact_x"})); err == nil || !strings.Contains(err.Error(), "API_KEYS") {
		t.Fatalf("a credential-shaped API key: %v", err)
	}
}
