package wire

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// HeaderRequestID carries the request id in and out; every error body repeats it.
const HeaderRequestID = "X-Request-Id"

type ctxKey struct{}

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the id of the request ctx belongs to ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// ValidRequestID accepts ids a client may choose: 1-128 characters of [A-Za-z0-9._:-].
// Anything else is replaced by a generated id (never echoed, so no header injection).
func ValidRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

// NewRequestID returns a fresh id: 32 hex digits.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// IncomingRequestID is the caller's X-Request-Id when it is a reasonable one, else a fresh id.
func IncomingRequestID(r *http.Request) string {
	if id := r.Header.Get(HeaderRequestID); ValidRequestID(id) {
		return id
	}
	return NewRequestID()
}

// EnsureRequestID returns the request's id: from the context (the API's middleware put it
// there), else from the response header, else IncomingRequestID; it is set on the response.
// Handlers served outside the API (the sweep, the activator) get an id this way too.
func EnsureRequestID(w http.ResponseWriter, r *http.Request) string {
	if r != nil {
		if id := RequestID(r.Context()); id != "" {
			return id
		}
	}
	if id := w.Header().Get(HeaderRequestID); id != "" {
		return id
	}
	id := NewRequestID()
	if r != nil {
		id = IncomingRequestID(r)
	}
	w.Header().Set(HeaderRequestID, id)
	return id
}
