package functions

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
)

// TestBuildFailureAnswers503AndRetries: a configuration that cannot be read answers 503 in
// the API's error shape, and a later request tries again (after the retry pause).
func TestBuildFailureAnswers503AndRetries(t *testing.T) {
	calls := 0
	state.mu.Lock()
	old := state.fromEnv
	state.fromEnv = func() (*config.Config, error) {
		calls++
		return nil, errors.New("REDIS_PORT=\"x\": want a whole number")
	}
	state.mu.Unlock()
	t.Cleanup(func() {
		state.mu.Lock()
		state.fromEnv, state.err, state.failed = old, nil, time.Time{}
		state.mu.Unlock()
	})
	for _, target := range []string{"/session/create", "/IdleSweep", "/health"} {
		w := httptest.NewRecorder()
		Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, target, nil))
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s: %d %s", target, w.Code, w.Body.String())
		}
		var body struct {
			Error     struct{ Code, Message string } `json:"error"`
			RequestID string                         `json:"request_id"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "unavailable" || body.RequestID == "" {
			t.Fatalf("%s: %s", target, w.Body.String())
		}
	}
	if calls != 1 {
		t.Fatalf("a failed build is retried at most once every %v: %d builds", retryBuild, calls)
	}
	state.mu.Lock()
	state.failed = time.Now().Add(-retryBuild)
	state.mu.Unlock()
	Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/health", nil))
	if calls != 2 {
		t.Fatalf("a later request tries again: %d builds", calls)
	}
}

// TestAPIServesTheSweep: POST /sweep on SessionAPI reaches the sweep, which checks its caller
// itself (the API's key check is not in front of it); with the key it runs, and answers 503
// with its report since Redis is down. /session/create still needs the API's key.
func TestAPIServesTheSweep(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close() // nothing listens here
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:%d"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, closed)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KUBECONFIG": kubeconfig, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": strconv.Itoa(closed), "API_KEY": "k1"}
	state.mu.Lock()
	old := state.fromEnv
	state.fromEnv = func() (*config.Config, error) {
		return config.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	}
	state.mu.Unlock()
	t.Cleanup(func() {
		_ = Close()
		state.mu.Lock()
		state.fromEnv, state.err, state.failed = old, nil, time.Time{}
		state.mu.Unlock()
	})
	do := func(method, target, key string) (*httptest.ResponseRecorder, map[string]any) {
		t.Helper()
		r := httptest.NewRequest(method, target, strings.NewReader("{}"))
		r.Header.Set("Content-Type", "application/json")
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		w := httptest.NewRecorder()
		SessionAPI(w, r)
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s %s: %d %q", method, target, w.Code, w.Body.String())
		}
		return w, body
	}
	w, body := do("POST", "/sweep", "")
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" ||
		!strings.Contains(body["error"].(map[string]any)["message"].(string), "OIDC") {
		t.Fatalf("no credentials: the sweep's own refusal expected, got %d %v", w.Code, body)
	}
	w, body = do("POST", "/sweep", "k1")
	if w.Code != http.StatusServiceUnavailable || body["report"] == nil {
		t.Fatalf("with the key, Redis down: %d %v", w.Code, body)
	}
	if w, _ := do("POST", "/session/create", ""); w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("create without a key: %d", w.Code)
	}
}
