package wire

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// CodeRecorder is a response writer that wants to know the error code it carries (the API's
// access log names it).
type CodeRecorder interface {
	RecordErrorCode(code string)
}

// answer is what an error is answered with.
type answer struct {
	status     int
	detail     ErrorDetail
	retryAfter time.Duration
	allow      string
	checks     map[string]string
}

var internalError = ErrorDetail{Code: string(session.KindInternal), Message: "internal error"}

// answerOf is the one mapping from an error to its HTTP answer. A *session.Error keeps its
// kind, field and message, except an internal one (or a kind this API does not know), which
// never says more than "internal error"; a deadline or cancellation that nothing classified
// is a 503 (safe to retry); anything else is a 500.
func answerOf(err error) answer {
	var we *Error
	var se *session.Error
	var a answer
	switch {
	case errors.As(err, &we):
		a = answer{detail: ErrorDetail{Code: we.Code, Message: we.Message, Field: we.Field},
			retryAfter: we.RetryAfter, allow: we.Allow, checks: we.Checks}
	case (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) && session.KindOf(err) == session.KindInternal:
		a.detail = ErrorDetail{Code: string(session.KindUnavailable), Message: "the request timed out or was cancelled; it is safe to retry"}
	case errors.As(err, &se):
		a.detail = ErrorDetail{Code: string(se.Kind), Message: se.Message, Field: se.Field, Limit: se.Limit}
		a.retryAfter = defaultRetryAfter(se.Kind)
		if _, known := statuses[string(se.Kind)]; !known || se.Kind == session.KindInternal {
			a.detail = internalError // never echo a bug's detail, nor a kind this API does not know
		}
	default:
		a.detail = internalError
	}
	if a.detail.Message == "" {
		a.detail.Message = defaultMessage(a.detail.Code, a.detail.Field)
	}
	a.status = StatusOf(a.detail.Code)
	return a
}

// Answer sets err's headers on w (Retry-After, Allow, the request id) and returns the status
// and body to write: for a handler that adds members of its own beside the error (the
// sweep's report). Errors of 500 and above are logged.
func Answer(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) (int, ErrorBody) {
	a := answerOf(err)
	body := ErrorBody{Error: a.detail, RequestID: EnsureRequestID(w, r), Checks: a.checks}
	if a.checks != nil {
		body.Status = string(session.KindUnavailable)
	}
	h := w.Header()
	if a.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(ceilSeconds(a.retryAfter)))
	}
	if a.allow != "" {
		h.Set("Allow", a.allow)
	}
	if a.status >= 500 {
		if log == nil {
			log = slog.Default()
		}
		level := slog.LevelError
		if r.Context().Err() != nil { // the caller went away or ran out of time: not a fault here
			level = slog.LevelWarn
		}
		log.LogAttrs(r.Context(), level, "request failed",
			slog.String("request_id", body.RequestID), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", a.status), slog.String("err", err.Error()))
	}
	if cr, ok := w.(CodeRecorder); ok {
		cr.RecordErrorCode(a.detail.Code)
	}
	return a.status, body
}

// WriteError answers err in the one error shape. Every error answer of the API, the sweep
// and the activator's status endpoint is written here.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, body := Answer(w, r, log, err)
	WriteJSON(w, status, body)
}

// WriteJSON writes v with status. Answers are never cached (one carries the password).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	if a, ok := v.(JSONAppender); ok {
		if b, err := a.AppendJSON(make([]byte, 0, 1024)); err == nil {
			w.WriteHeader(status)
			_, _ = w.Write(append(b, '\n'))
			return
		}
	}
	// The encoder writes the body and its newline in one Write from its own reused buffer
	// (json.Marshal would copy the body out, and the newline copy it again); it writes nothing
	// when v cannot be encoded, so the status is sent with the first byte.
	sw := &statusWriter{w: w, status: status}
	if err := json.NewEncoder(sw).Encode(v); err != nil && !sw.wrote {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":{"code":"internal","message":"internal error"},"request_id":""}` + "\n"))
	}
}

// JSONAppender is a value that writes its own JSON, as encoding/json would, without
// reflection (session.Session and the lists of them). On an error WriteJSON uses
// encoding/json.
type JSONAppender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// statusWriter sends status before the first byte written through it.
type statusWriter struct {
	w      http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.wrote = true
		s.w.WriteHeader(s.status)
	}
	return s.w.Write(b)
}
