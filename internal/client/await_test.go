package client

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// Await asks GET /status?wait= (capped at session.MaxAwait). An API from before the wait
// refuses the parameter as it refuses any unknown one (400 naming it): the client then reads
// plainly, and never sends it to that API again.
func TestAwaitAsksTheAPIToWait(t *testing.T) {
	for _, older := range []bool{false, true} {
		var mu sync.Mutex
		var waits []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			waits = append(waits, r.URL.Query().Get("wait"))
			mu.Unlock()
			if older && r.URL.Query().Has("wait") {
				wire.WriteError(w, r, slog.New(slog.DiscardHandler), session.Invalid("wait", "unknown query parameter %q (allowed: )", "wait"))
				return
			}
			wire.WriteJSON(w, http.StatusOK, &session.Session{ID: "ab12cd34", State: session.StateRunning})
		}))
		c, err := New(srv.URL, key, fast())
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if s, err := c.Await(t.Context(), "ab12cd34", time.Minute); err != nil || s.State != session.StateRunning {
				t.Fatalf("older %v: %+v %v", older, s, err)
			}
		}
		if s, err := c.Await(t.Context(), "ab12cd34", 0); err != nil || s.ID != "ab12cd34" {
			t.Fatalf("older %v, no wait: %+v %v", older, s, err)
		}
		srv.Close()
		want := "[20s 20s ]"
		if older {
			want = "[20s   ]" // refused, read again plainly; then plainly only
		}
		mu.Lock()
		if got := fmt.Sprint(waits); got != want {
			t.Errorf("older %v: the waits sent were %s, want %s", older, got, want)
		}
		mu.Unlock()
	}
}
