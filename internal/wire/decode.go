package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// APIError is the HTTP detail of an error answer; it is the Err of the *session.Error that
// DecodeError returns.
type APIError struct {
	Status     int
	Code       string
	RequestID  string
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := "HTTP " + strconv.Itoa(e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// DecodeError maps an error answer back to a *session.Error whose Err is the *APIError. A
// session kind comes back as itself; the HTTP layer's codes become what they mean to a caller
// (a refused key is an invalid api_key, a missing route a wrong endpoint). Only the API's own
// JSON error with code "not_found" means a missing session: a 404 page from something else (a
// wrong endpoint, a proxy) must never make a caller believe a session is gone.
func DecodeError(status int, h http.Header, body []byte) error {
	ae := &APIError{Status: status, RequestID: h.Get(HeaderRequestID), RetryAfter: RetryAfter(h)}
	var eb struct {
		Error     *ErrorDetail `json:"error"`
		RequestID string       `json:"request_id"`
	}
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error == nil || eb.Error.Code == "" {
		kind := session.KindInternal
		switch status {
		case http.StatusTooManyRequests:
			kind = session.KindRateLimited
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			kind = session.KindUnavailable
		}
		return &session.Error{Kind: kind, Message: fmt.Sprintf("unexpected answer from the Hyperbola API: %s", http.StatusText(status)), Err: ae}
	}
	ae.Code = eb.Error.Code
	if eb.RequestID != "" {
		ae.RequestID = eb.RequestID
	}
	e := &session.Error{Kind: session.Kind(eb.Error.Code), Field: eb.Error.Field, Limit: eb.Error.Limit, Message: eb.Error.Message, Err: ae}
	switch eb.Error.Code {
	case CodeUnauthenticated:
		e.Kind, e.Field = session.KindInvalid, "api_key"
	case CodeForbidden: // the key is good, its role does not reach this route: use another key
		e.Kind, e.Field = session.KindInvalid, "api_key"
	case CodeRouteNotFound:
		e.Kind, e.Field = session.KindInvalid, "endpoint"
		e.Message = "the endpoint does not serve this Hyperbola API route: " + e.Message
	case CodePayloadTooLarge, CodeUnsupportedMediaType:
		e.Kind = session.KindInvalid
	case CodeMethodNotAllowed:
		e.Kind = session.KindInternal
	default:
		if _, known := statuses[eb.Error.Code]; !known { // a code from a newer server
			e.Kind = session.KindInternal
			if status == http.StatusServiceUnavailable {
				e.Kind = session.KindUnavailable
			}
		}
	}
	return e
}

// IsUnimplemented reports an answer of code "unimplemented" (or any KindUnimplemented error):
// the control plane was built without the part the call needs. Retrying does not help.
func IsUnimplemented(err error) bool {
	var ae *APIError
	return errors.Is(err, session.ErrUnimplemented) || (errors.As(err, &ae) && ae.Code == string(session.KindUnimplemented))
}

// RetryAfter reads a Retry-After header (seconds or an HTTP date); 0 when there is none.
func RetryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
