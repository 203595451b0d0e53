package functions

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
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
		Handler().ServeHTTP(w, httptest.NewRequest("POST", target, nil))
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
	Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/health", nil))
	if calls != 2 {
		t.Fatalf("a later request tries again: %d builds", calls)
	}
}
