package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Every error the server writes comes back from DecodeError as the same kind, field and
// message, with the status and Retry-After the code has.
func TestRoundTrip(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []struct {
		err     error
		status  int
		kind    session.Kind
		field   string
		retry   string
		message string
	}{
		{session.Invalid("user_id", "user_id is required"), 400, session.KindInvalid, "user_id", "", "user_id is required"},
		{session.NotFound("ab12cd34"), 404, session.KindNotFound, "", "", `session "ab12cd34" not found`},
		{&session.Error{Kind: session.KindBusy}, 409, session.KindBusy, "", "1", "another change to this session is in progress; retry shortly"},
		{session.Unavailable("redis", errors.New("refused")), 503, session.KindUnavailable, "", "1", "redis unavailable"},
		{session.Unimplemented("needs Firestore"), 501, session.KindUnimplemented, "", "", "needs Firestore"},
		{&Error{Code: string(session.KindRateLimited), Message: "slow", RetryAfter: 1500 * time.Millisecond}, 429, session.KindRateLimited, "", "2", "slow"},
		{&session.Error{Kind: session.KindInternal, Message: "secret"}, 500, session.KindInternal, "", "", "internal error"},
		{&session.Error{Kind: "newer", Message: "secret"}, 500, session.KindInternal, "", "", "internal error"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 503, session.KindUnavailable, "", "", "the request timed out or was cancelled; it is safe to retry"},
		{&Error{Code: CodeUnsupportedMediaType, Field: "Content-Type", Message: "json"}, 415, session.KindInvalid, "Content-Type", "", "json"},
		{&Error{Code: CodeUnauthenticated, Message: "key"}, 401, session.KindInvalid, "api_key", "", "key"},
		{&Error{Code: CodeForbidden, Message: "role"}, 403, session.KindInvalid, "api_key", "", "role"},
		{&Error{Code: CodeMethodNotAllowed, Message: "no", Allow: "POST"}, 405, session.KindInternal, "", "", "no"},
		{session.Quota(session.LimitSessionsPerUser, "three"), 403, session.KindQuota, "", "", "three"},
		{&session.Error{Kind: session.KindInvalid, Field: "memory", Limit: session.LimitMaxMemory, Message: "big"}, 400, session.KindInvalid, "memory", "", "big"},
	}
	for _, c := range cases {
		t.Run(c.err.Error(), func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			r.Header.Set(HeaderRequestID, "req-1")
			WriteError(w, r, quiet, c.err)
			if w.Code != c.status || w.Header().Get("Retry-After") != c.retry {
				t.Fatalf("%d Retry-After %q, want %d %q", w.Code, w.Header().Get("Retry-After"), c.status, c.retry)
			}
			err := DecodeError(w.Code, w.Header(), w.Body.Bytes())
			var se *session.Error
			var ae *APIError
			if !errors.As(err, &se) || !errors.As(err, &ae) {
				t.Fatalf("decoded %T %v", err, err)
			}
			if se.Kind != c.kind || se.Field != c.field || se.Message != c.message || ae.RequestID != "req-1" || ae.Status != c.status ||
				se.Limit != session.LimitOf(c.err) {
				t.Fatalf("decoded %+v / %+v", se, ae)
			}
		})
	}
}

func TestIsUnimplemented(t *testing.T) {
	older := &session.Error{Kind: session.KindInternal, Err: &APIError{Status: 501, Code: "unimplemented"}}
	if !IsUnimplemented(session.Unimplemented("no")) || !IsUnimplemented(older) || IsUnimplemented(session.ErrConflict) {
		t.Fatal("IsUnimplemented")
	}
}

// A 404 that is not the API's own error never means a missing session.
func TestDecodeForeignAnswer(t *testing.T) {
	for status, kind := range map[int]session.Kind{404: session.KindInternal, 429: session.KindRateLimited, 502: session.KindUnavailable} {
		if got := session.KindOf(DecodeError(status, http.Header{}, []byte("<html>"))); got != kind {
			t.Errorf("%d: %s, want %s", status, got, kind)
		}
	}
}

// WriteJSON sends the status with the body and its newline; what cannot be encoded is a 500
// in the error shape, never half a body.
func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusCreated, map[string]string{"a": "<b>"})
	if rec.Code != http.StatusCreated || rec.Body.String() != `{"a":"\u003cb\u003e"}`+"\n" ||
		rec.Header().Get("Content-Type") != "application/json; charset=utf-8" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %q %v", rec.Code, rec.Body, rec.Header())
	}
	rec = httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, map[string]any{"f": func() {}})
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"code":"internal"`) {
		t.Fatalf("%d %q", rec.Code, rec.Body)
	}
}
