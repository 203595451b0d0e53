package api

import (
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// recoverPanic turns a handler's panic into a logged 500 internal (when nothing was written
// yet), inside the access log and the metrics so they count it. http.ErrAbortHandler is
// net/http's own way to abort a response and passes through.
func (s *Server) recoverPanic(w http.ResponseWriter, r *http.Request, next http.Handler) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value, compared as net/http does
			panic(p)
		}
		s.log.ErrorContext(r.Context(), "panic serving request", "request_id", wire.RequestID(r.Context()), "panic", p, "stack", string(debug.Stack()))
		if exchangeOf(r.Context()).status == 0 {
			wire.WriteError(w, r, s.log, fmt.Errorf("panic: %v", p)) // a 500 internal that says nothing more
		}
	}()
	next.ServeHTTP(w, r)
}
