// Package wire is the HTTP API's error format, declared once for the server (internal/api,
// the sweep's handler, the activator's status endpoint) and the Go client (internal/client):
// the JSON error body, the codes beside the session core's error kinds, the one table from
// code to HTTP status with its Retry-After, and the way back from an answer to a
// *session.Error.
//
//	{"error":{"code":"invalid_argument","message":"...","field":"user_id"},"request_id":"..."}
//	{"error":{"code":"quota_exceeded","message":"...","limit":"max_sessions_per_user"},"request_id":"..."}
package wire

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Codes that are not session kinds: the HTTP layer itself answers them. Every other code is a
// session.Kind.
const (
	CodeUnauthenticated      = "unauthenticated"        // 401: no key, or not one of ours
	CodeForbidden            = "forbidden"              // 403: a key whose role the route does not admit
	CodeRouteNotFound        = "route_not_found"        // 404: no such route (never "not_found", which is a missing session)
	CodeMethodNotAllowed     = "method_not_allowed"     // 405, with Allow
	CodePayloadTooLarge      = "payload_too_large"      // 413
	CodeUnsupportedMediaType = "unsupported_media_type" // 415
)

// ErrorBody is the one error shape of the API. A failed readiness check adds "status" and
// "checks" (GET /ready's own members).
type ErrorBody struct {
	Error     ErrorDetail       `json:"error"`
	RequestID string            `json:"request_id"`
	Status    string            `json:"status,omitempty"`
	Checks    map[string]string `json:"checks,omitempty"`
}

// ErrorDetail is the "error" member of ErrorBody. Limit names the deployment limit an answer
// ran into: a quota (code quota_exceeded) or a maximum (invalid_argument, with the field).
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Limit   string `json:"limit,omitempty"`
}

// Error is an answer the HTTP layer decides itself (bad routes, bodies, keys, limits), or a
// session kind that needs more than a *session.Error carries (a Retry-After of its own).
// Its status is the code's (StatusOf).
type Error struct {
	Code    string // a session.Kind or one of the Code constants
	Message string
	Field   string
	// RetryAfter, when positive, is sent as Retry-After (whole seconds, rounded up).
	RetryAfter time.Duration
	// Allow is sent as the Allow header (405).
	Allow string
	// Checks is a failed health report: it is sent as "checks" with "status":"unavailable".
	Checks map[string]string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%d %s (%s): %s", StatusOf(e.Code), e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%d %s: %s", StatusOf(e.Code), e.Code, e.Message)
}

// statuses is the only table from an error code to its HTTP status; DecodeError reads the
// codes back.
var statuses = map[string]int{
	string(session.KindInvalid):       http.StatusBadRequest,
	string(session.KindNotFound):      http.StatusNotFound,
	string(session.KindConflict):      http.StatusConflict,
	string(session.KindBusy):          http.StatusConflict, // + Retry-After: 1
	string(session.KindRateLimited):   http.StatusTooManyRequests,
	string(session.KindUnavailable):   http.StatusServiceUnavailable,
	string(session.KindBackup):        http.StatusInternalServerError,
	string(session.KindInternal):      http.StatusInternalServerError,
	string(session.KindUnimplemented): http.StatusNotImplemented,
	// A count quota is a refusal, not a rate: retrying does not help until a session of the
	// caller's is deleted or sleeps (or, for max_running, any), so 403 and no Retry-After.
	string(session.KindQuota): http.StatusForbidden,
	CodeUnauthenticated:       http.StatusUnauthorized,
	CodeForbidden:             http.StatusForbidden,
	CodeRouteNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed:      http.StatusMethodNotAllowed,
	CodePayloadTooLarge:       http.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType:  http.StatusUnsupportedMediaType,
}

// StatusOf is the HTTP status of an error code (500 for a code this API does not know).
func StatusOf(code string) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// defaultRetryAfter is what a *session.Error of kind asks a caller to wait: a session's lock
// is held for a moment, and a dependency that failed is worth one more try soon. An *Error
// says itself (RetryAfter).
func defaultRetryAfter(kind session.Kind) time.Duration {
	switch kind {
	case session.KindBusy, session.KindUnavailable:
		return time.Second
	}
	return 0
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
	case session.KindUnimplemented:
		return "this control plane was built without the part this needs"
	case session.KindQuota:
		return "a quota of this deployment is reached"
	}
	return "internal error"
}

// ceilSeconds is d in whole seconds, rounded up, at least 1.
func ceilSeconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}

// CeilSeconds is d in whole seconds, rounded up; 0 for a d that is not positive (a
// RateLimit-Reset that is due).
func CeilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return ceilSeconds(d)
}
