package sweep_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// brokenStore fails to read the idle index (Redis unreachable, say).
type brokenStore struct{ *sessiontest.Store }

func (brokenStore) IdleCandidates(context.Context, time.Time, int) ([]string, error) {
	return nil, session.Unavailable("redis", errors.New("connection refused"))
}

func TestHandler(t *testing.T) {
	wo := newWorld()
	clk := wo.Clock
	wo.Seed(running("aidle001", clk.Now()))
	st := wo.Store
	clk.Add(time.Hour)
	hb := &heartbeats{answer: map[string]any{"aidle001": time.Time{}}}
	auth, err := sweep.NewAuth(sweep.AuthOptions{APIKeys: []string{"secret"}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	h := sweep.Handler(sweep.New(sweep.Deps{Sessions: wo.svc, Store: st, Prober: hb, Now: clk.Now, Logger: quiet()}, sweep.Options{}), auth)
	do := func(h http.Handler, method, key string) (*httptest.ResponseRecorder, map[string]any) {
		r := httptest.NewRequest(method, "/sweep", nil)
		r.Header.Set("X-Request-Id", "req-1")
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: body %q is not JSON: %v", method, w.Body.String(), err)
		}
		return w, body
	}
	w, body := do(h, http.MethodGet, "secret")
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" || body["error"].(map[string]any)["code"] != "method_not_allowed" {
		t.Fatalf("GET: %d %v", w.Code, body)
	}
	w, body = do(h, http.MethodPost, "wrong")
	if w.Code != http.StatusUnauthorized || body["error"].(map[string]any)["code"] != "unauthenticated" || body["request_id"] != "req-1" {
		t.Fatalf("bad key: %d %v", w.Code, body)
	}
	if hb.called("aidle001") != 0 {
		t.Fatal("a refused request ran the sweep")
	}
	w, body = do(h, http.MethodPost, "secret")
	if w.Code != http.StatusOK || body["slept"] != float64(1) || body["candidates"] != float64(1) || body["skipped"] != false ||
		w.Header().Get("X-Request-Id") != "req-1" || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("sweep: %d %v %v", w.Code, body, w.Header())
	}
	st.HoldLease("sweep", true)
	w, body = do(h, http.MethodPost, "secret")
	if w.Code != http.StatusOK || body["skipped"] != true {
		t.Fatalf("skipped sweep: %d %v", w.Code, body)
	}
	st.HoldLease("sweep", false)

	broken := sweep.Handler(sweep.New(sweep.Deps{Sessions: wo.svc, Store: brokenStore{st}, Prober: hb, Now: clk.Now, Logger: quiet()}, sweep.Options{}), auth)
	w, body = do(broken, http.MethodPost, "secret")
	if w.Code != http.StatusServiceUnavailable || body["error"].(map[string]any)["code"] != "unavailable" || body["report"] == nil {
		t.Fatalf("broken store: %d %v", w.Code, body)
	}
}
