package stack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// TestStuckAfter: HYPERBOLA_STUCK_AFTER reaches the sweep and the API, and the API reads the
// stuck sessions from the stack's store.
func TestStuckAfter(t *testing.T) {
	if got := SweepOptions(read(t, nil)).StuckAfter; got != 30*time.Minute {
		t.Errorf("the sweep's default StuckAfter = %v, want 30m", got)
	}
	st := newStack(t, map[string]string{"API_KEY": "k1", "HYPERBOLA_STUCK_AFTER": "45m"})
	if got := st.Sweeper().Options().StuckAfter; got != 45*time.Minute {
		t.Errorf("the sweep's StuckAfter = %v, want 45m", got)
	}
	if o, err := APIOptions(st.Config); err != nil || o.StuckAfter != 45*time.Minute {
		t.Errorf("the API's StuckAfter = %v (%v), want 45m", o.StuckAfter, err)
	}

	ctx := context.Background()
	now := time.Now()
	for id, since := range map[string]time.Time{"stuck001": now.Add(-time.Hour), "young001": now.Add(-40 * time.Minute)} {
		sess := &session.Session{ID: id, UserID: "u", State: session.StateCreating, Pending: session.PendingReady,
			PendingSince: since, CreatedAt: since, UpdatedAt: since, LastActivity: since}
		l, err := st.Store.Acquire(ctx, id, time.Minute, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Store.Put(ctx, l, sess); err != nil {
			t.Fatal(err)
		}
		_ = l.Release(ctx)
	}
	h, err := st.Handlers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	r.Header.Set(api.HeaderAPIKey, "k1")
	r.Header.Set("Accept", "text/plain")
	w := httptest.NewRecorder()
	h.API.ServeHTTP(w, r)
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, `hyperbola_sessions_stuck{step="await-ready"} 1`+"\n") ||
		!strings.Contains(body, `hyperbola_session_stuck_seconds{id="stuck001",step="await-ready"}`) || strings.Contains(body, "young001") {
		t.Fatalf("%d: the exposition does not name exactly stuck001 past 45m:\n%s", w.Code, body)
	}
}
