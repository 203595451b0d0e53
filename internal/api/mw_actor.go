package api

import (
	"context"
	"net/http"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// HeaderActor names the tool behind an authenticated caller, so durable events tell
// Terraform's changes from other API calls. Only "terraform" is believed; anything else (or
// nothing) records the change as "api".
const HeaderActor = wire.HeaderActor

// actor puts the caller's tool in the context for the session core's events.
func actor(w http.ResponseWriter, r *http.Request, next http.Handler) {
	next.ServeHTTP(w, r.WithContext(actorFrom(r)))
}

func actorFrom(r *http.Request) context.Context {
	if a := r.Header.Get(HeaderActor); a == "terraform" {
		return session.WithActor(r.Context(), a)
	}
	return r.Context()
}
