package api

import (
	"net/http"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// HeaderRequestID carries the request id in and out.
const HeaderRequestID = wire.HeaderRequestID

// requestID gives the request its id: the caller's X-Request-Id when it is a reasonable one,
// else a fresh one. It is sent back, put in every error body and every log line.
func requestID(w http.ResponseWriter, r *http.Request, next http.Handler) {
	id := wire.IncomingRequestID(r)
	w.Header().Set(HeaderRequestID, id)
	next.ServeHTTP(w, r.WithContext(wire.WithRequestID(r.Context(), id)))
}
