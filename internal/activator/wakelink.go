package activator

import (
	"context"
	"net/http"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// Getter reads a session (session.Manager has it).
type Getter interface {
	Get(ctx context.Context, id string) (*session.Session, error)
}

// WakeLinkResponse is POST /session/{uuid}/wake-link's answer.
type WakeLinkResponse struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// WakeLinkRoute is the API's route POST /session/{uuid}/wake-link, for internal/api's
// Server.Handle (behind an API key): it answers 200 {"url", "expires_at"}, a link that wakes
// the session from its address until it expires. ?ttl= sets its lifetime (a Go duration,
// 1m to 24h; DefaultLinkTTL). Its errors are session errors, for the API's error writer. now
// is time.Now when nil.
func WakeLinkRoute(sessions Getter, secret []byte, now func() time.Time) func(http.ResponseWriter, *http.Request) error {
	if now == nil {
		now = time.Now
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		ttl := DefaultLinkTTL
		if v := r.URL.Query().Get("ttl"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Minute || d > MaxLinkTTL {
				return session.Invalid("ttl", "ttl must be a duration from 1m to 24h, such as 30m")
			}
			ttl = d
		}
		id := r.PathValue("uuid")
		if err := session.CheckID(id); err != nil {
			return err
		}
		sess, err := sessions.Get(r.Context(), id)
		if err != nil {
			return err
		}
		switch sess.State {
		case session.StateDeleting, session.StateDeleted, session.StateFailed:
			return session.Conflict("session %s is %s: it cannot be woken from its address", id, sess.State)
		}
		exp := now().Add(ttl).Truncate(time.Second).UTC()
		wire.WriteJSON(w, http.StatusOK, WakeLinkResponse{URL: WakeLink(sess.WorkspaceURL, secret, id, exp), ExpiresAt: exp})
		return nil
	}
}
