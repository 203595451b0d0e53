package api

import (
	"log/slog"
	"net/http"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// The API's error shape and codes are internal/wire's; these names keep the API's own.
type (
	// ErrorBody is the one error shape of the API (wire.ErrorBody).
	ErrorBody = wire.ErrorBody
	// ErrorDetail is the "error" member of ErrorBody.
	ErrorDetail = wire.ErrorDetail
)

// Error codes that are not session kinds, and the 501 kind.
const (
	CodeUnauthenticated      = wire.CodeUnauthenticated
	CodeRouteNotFound        = wire.CodeRouteNotFound
	CodeMethodNotAllowed     = wire.CodeMethodNotAllowed
	CodePayloadTooLarge      = wire.CodePayloadTooLarge
	CodeUnsupportedMediaType = wire.CodeUnsupportedMediaType
	CodeUnimplemented        = string(session.KindUnimplemented)
)

// WriteError answers err in the API's one error shape, for code outside the Server (the
// functions' wiring); the Server's routes and middleware write theirs the same way.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	wire.WriteError(w, r, log, err)
}

// writeJSON writes a successful answer (never cached: one carries the password).
func writeJSON(w http.ResponseWriter, status int, v any) { wire.WriteJSON(w, status, v) }
