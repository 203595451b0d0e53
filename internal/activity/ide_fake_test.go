package activity_test

// A recording stand-in for the control plane's activity routes, for TestIDEExtensionReportsUse.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
)

type record struct {
	At     time.Time
	Method string
	Kind   string
}

func (r record) String() string {
	return fmt.Sprintf("%s %s %s", r.At.Format("15:04:05.000"), r.Method, r.Kind)
}

func isGet(r record) bool { return r.Method == http.MethodGet }

func reportAfter(kind string, t time.Time) func([]record) bool {
	return func(rs []record) bool {
		return slices.ContainsFunc(rs, func(r record) bool { return r.Method == http.MethodPost && r.Kind == kind && r.At.After(t) })
	}
}

// fakeAPI answers GET and POST /session/{id}/activity for one session and one credential as
// the contract says, and records each call.
type fakeAPI struct {
	id    string
	token string

	mu      sync.Mutex
	records []record
	badAuth int
	last    time.Time
	sleepAt time.Time // zero: sleep_at is the last activity + the cap, as the API computes it (setSleepIn)
	changed chan struct{}
}

func newFakeAPI(id, token string) *fakeAPI {
	return &fakeAPI{id: id, token: token, last: time.Now(), changed: make(chan struct{})}
}

const (
	fakeIdle = 15 * time.Minute
	fakeCap  = 2 * time.Hour
)

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/session/"+f.id+"/activity" {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		f.mu.Lock()
		f.badAuth++
		f.mu.Unlock()
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	rec := record{At: time.Now(), Method: r.Method}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		var rep activity.Report
		body, _ := io.ReadAll(r.Body)
		if len(body) > 0 {
			if err := json.Unmarshal(body, &rep); err != nil || !slices.Contains(activity.Kinds, rep.Kind) {
				http.Error(w, `{"error":"bad kind","field":"kind"}`, http.StatusBadRequest)
				return
			}
		}
		rec.Kind = rep.Kind
	default:
		http.Error(w, `{"error":"method"}`, http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	now := time.Now()
	if r.Method == http.MethodPost {
		f.last = now
		if rec.Kind == activity.KindStay {
			f.sleepAt = time.Time{}
		}
	}
	sleepAt := f.last.Add(fakeCap)
	if !f.sleepAt.IsZero() {
		sleepAt = f.sleepAt
	}
	ans := map[string]string{
		"uuid": f.id, "last_activity": f.last.UTC().Format(time.RFC3339),
		"idle_timeout": fakeIdle.String(), "idle_connected_max": fakeCap.String(),
		"idle_at":  f.last.Add(fakeIdle).UTC().Format(time.RFC3339),
		"sleep_at": sleepAt.UTC().Format(time.RFC3339), "now": now.UTC().Format(time.RFC3339),
	}
	f.records = append(f.records, rec)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

// setSleepIn makes the answers' sleep_at d from now until a stay report, whatever else is
// reported meanwhile: the test's typing keeps the window active, so the extension goes on
// reporting input, which the real API would count against the cap.
func (f *fakeAPI) setSleepIn(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleepAt = time.Now().Add(d)
}

func (f *fakeAPI) all() []record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.records)
}

func (f *fakeAPI) unauthorized() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.badAuth
}

func (f *fakeAPI) count(kind string) int {
	n := 0
	for _, r := range f.all() {
		if r.Method == http.MethodPost && r.Kind == kind {
			n++
		}
	}
	return n
}

// waitFor waits until ok holds for the records, failing after timeout.
func (f *fakeAPI) waitFor(t *testing.T, what string, timeout time.Duration, ok func([]record) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		f.mu.Lock()
		done, ch := ok(f.records), f.changed
		f.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: none after %s; requests: %v", what, timeout, f.all())
		}
	}
}
