package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Error codes that are not session kinds: they come from the HTTP layer itself. Every other
// code is a session.Kind.
const (
	CodeUnauthenticated      = "unauthenticated"        // 401: no key, or not one of ours
	CodeRouteNotFound        = "route_not_found"        // 404: no such route (never "not_found", which is a missing session)
	CodeMethodNotAllowed     = "method_not_allowed"     // 405, with Allow
	CodePayloadTooLarge      = "payload_too_large"      // 413
	CodeUnsupportedMediaType = "unsupported_media_type" // 415
	CodeUnimplemented        = "unimplemented"          // 501
)

// HTTPError is an error the HTTP layer answers itself (bad routes, bodies, keys, limits).
type HTTPError struct {
	Status  int
	Code    string
	Message string
	Field   string
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration
	// Allow is sent as the Allow header (405).
	Allow string
}

func (e *HTTPError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%d %s (%s): %s", e.Status, e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// badRequest is a 400 invalid_argument naming field.
func badRequest(field, format string, args ...any) *HTTPError {
	return &HTTPError{Status: http.StatusBadRequest, Code: string(session.KindInvalid), Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorBody is the one error shape of the API:
//
//	{"error":{"code":"invalid_argument","message":"...","field":"user_id"},"request_id":"..."}
//
// A failed health check adds "status" and "checks" (GET /health's own fields).
type ErrorBody struct {
	Error     ErrorDetail       `json:"error"`
	RequestID string            `json:"request_id"`
	Status    string            `json:"status,omitempty"`
	Checks    map[string]string `json:"checks,omitempty"`
}

// ErrorDetail is the "error" member of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// healthError carries a failed health report through the one error writer.
type healthError struct {
	failed string
	checks map[string]string
}

func (e *healthError) Error() string { return e.failed + " unavailable" }

// StatusOf maps a session error kind to its HTTP status. This table is the only place that
// does so; internal/client maps the codes back.
//
//	invalid_argument 400   not_found 404    conflict 409    busy 409 (+ Retry-After: 1)
//	rate_limited 429       unavailable 503  backup_failed 500            internal 500
func StatusOf(kind session.Kind) int {
	switch kind {
	case session.KindInvalid:
		return http.StatusBadRequest
	case session.KindNotFound:
		return http.StatusNotFound
	case session.KindConflict, session.KindBusy:
		return http.StatusConflict
	case session.KindRateLimited:
		return http.StatusTooManyRequests
	case session.KindUnavailable:
		return http.StatusServiceUnavailable
	case session.KindBackup, session.KindInternal:
		return http.StatusInternalServerError
	}
	return http.StatusInternalServerError
}

// WriteError answers err in the API's one error shape. It is for code outside the Server
// (the functions' wiring); the Server's own handlers go through the same function.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	writeError(w, r, log, err)
}

// writeError is the one function that writes an error response.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if log == nil {
		log = slog.Default()
	}
	body := ErrorBody{RequestID: EnsureRequestID(w, r)}
	status := http.StatusInternalServerError
	h := w.Header()

	var he *HTTPError
	var hc *healthError
	var se *session.Error
	switch {
	case errors.As(err, &he):
		status = he.Status
		body.Error = ErrorDetail{Code: he.Code, Message: he.Message, Field: he.Field}
		if he.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(ceilSeconds(he.RetryAfter)))
		}
		if he.Allow != "" {
			h.Set("Allow", he.Allow)
		}
	case errors.As(err, &hc):
		status = http.StatusServiceUnavailable
		body.Error = ErrorDetail{Code: string(session.KindUnavailable), Message: hc.Error()}
		body.Status, body.Checks = "unavailable", hc.checks
		h.Set("Retry-After", "5")
	case (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) && session.KindOf(err) == session.KindInternal:
		status = http.StatusServiceUnavailable
		body.Error = ErrorDetail{Code: string(session.KindUnavailable), Message: "the request timed out or was cancelled; it is safe to retry"}
	case errors.As(err, &se):
		kind := se.Kind
		status = StatusOf(kind)
		body.Error = ErrorDetail{Code: string(kind), Message: se.Message, Field: se.Field}
		switch kind {
		case session.KindInternal:
			body.Error = ErrorDetail{Code: string(session.KindInternal), Message: "internal error"}
		case session.KindBusy:
			h.Set("Retry-After", "1")
		case session.KindUnavailable:
			h.Set("Retry-After", "1")
		case session.KindInvalid, session.KindNotFound, session.KindConflict, session.KindRateLimited, session.KindBackup:
		default: // a kind this API does not know: never echo it
			body.Error = ErrorDetail{Code: string(session.KindInternal), Message: "internal error"}
		}
		if body.Error.Message == "" {
			body.Error.Message = defaultMessage(body.Error.Code, body.Error.Field)
		}
	default:
		body.Error = ErrorDetail{Code: string(session.KindInternal), Message: "internal error"}
	}

	if status >= 500 {
		level := slog.LevelError
		if r.Context().Err() != nil { // the caller went away or ran out of time: not a fault here
			level = slog.LevelWarn
		}
		log.LogAttrs(r.Context(), level, "request failed",
			slog.String("request_id", body.RequestID), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", status), slog.String("err", err.Error()))
	}
	if ew, ok := w.(interface{ setErrorCode(string) }); ok {
		ew.setErrorCode(body.Error.Code)
	}
	writeJSON(w, status, body)
}

func defaultMessage(code, field string) string {
	switch session.Kind(code) {
	case session.KindInvalid:
		if field != "" {
			return "invalid " + field
		}
		return "invalid request"
	case session.KindNotFound:
		return "session not found"
	case session.KindConflict:
		return "the session's state does not allow this"
	case session.KindBusy:
		return "another change to this session is in progress; retry shortly"
	case session.KindUnavailable:
		return "a dependency is unavailable; retry shortly"
	case session.KindRateLimited:
		return "too many requests"
	case session.KindBackup:
		return "the backup failed; the volume was kept"
	}
	return "internal error"
}

func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// writeJSON writes v with status. API responses are never cached (one carries the password).
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"},"request_id":""}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
