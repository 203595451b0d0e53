package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/ratelimit"
)

// HeaderRequestID carries the request id in and out.
const HeaderRequestID = "X-Request-Id"

// HeaderAPIKey carries the API key ("Authorization: Bearer <key>" is accepted too).
const HeaderAPIKey = "X-API-Key"

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxClientIP
)

// validRequestID accepts ids a client may choose: 1-128 characters of [A-Za-z0-9._:-].
// Anything else is replaced by a generated id (never echoed, so no header injection).
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// EnsureRequestID returns the request's id: from the context the Server set, else from the
// response header, else the caller's X-Request-Id when it is a reasonable one, else a fresh
// one; it is set on the response. Handlers mounted beside the API (the sweep) use it too.
func EnsureRequestID(w http.ResponseWriter, r *http.Request) string {
	if r != nil {
		if id, ok := r.Context().Value(ctxRequestID).(string); ok && id != "" {
			return id
		}
	}
	if id := w.Header().Get(HeaderRequestID); id != "" {
		return id
	}
	id := ""
	if r != nil && validRequestID(r.Header.Get(HeaderRequestID)) {
		id = r.Header.Get(HeaderRequestID)
	} else {
		id = newRequestID()
	}
	w.Header().Set(HeaderRequestID, id)
	return id
}

// RequestID returns the id of the request ctx belongs to ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxRequestID).(string)
	return id
}

// ClientIP returns the client address the Server decided on for ctx's request.
func ClientIP(ctx context.Context) netip.Addr {
	ip, _ := ctx.Value(ctxClientIP).(netip.Addr)
	return ip
}

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	errCode string
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.bytes += int64(n)
	return n, err
}

func (rw *recorder) setErrorCode(c string) { rw.errCode = c }

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

func (rw *recorder) Flush() {
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// keys holds the accepted API keys as SHA-256 digests, so every comparison has the same
// length and takes the same time whatever the candidate.
type keys struct {
	digests [][sha256.Size]byte
}

func newKeys(list []string) keys {
	var k keys
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			k.digests = append(k.digests, sha256.Sum256([]byte(s)))
		}
	}
	return k
}

// match compares the candidate with every key (never stopping early) in constant time.
func (k keys) match(candidate string) bool {
	if candidate == "" {
		return false
	}
	d := sha256.Sum256([]byte(candidate))
	ok := 0
	for i := range k.digests {
		ok |= subtle.ConstantTimeCompare(d[:], k.digests[i][:])
	}
	return ok == 1
}

// apiKey reads the key from X-API-Key, or from "Authorization: Bearer <key>" (what
// Prometheus' scrape config can send).
func apiKey(r *http.Request) string {
	if k := r.Header.Get(HeaderAPIKey); k != "" {
		return k
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// keyID is the key's name in rate-limit keys and logs: a digest prefix, never the key.
func keyID(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:12])
}

var errUnauthenticated = &HTTPError{
	Status: http.StatusUnauthorized, Code: CodeUnauthenticated,
	Message: "a valid API key is required in the X-API-Key header",
}

// RateResult is a rate limiter's decision.
type RateResult = ratelimit.Result

// RateLimiter admits requests against a per-minute limit shared by every instance.
// *ratelimit.Limiter implements it.
type RateLimiter interface {
	Allow(ctx context.Context, key string, perMinute int) (RateResult, error)
}

// RateLimiterFunc adapts a function to RateLimiter.
type RateLimiterFunc func(ctx context.Context, key string, perMinute int) (RateResult, error)

// Allow calls f.
func (f RateLimiterFunc) Allow(ctx context.Context, key string, perMinute int) (RateResult, error) {
	return f(ctx, key, perMinute)
}

func setRateHeaders(h http.Header, res RateResult) {
	h.Set("RateLimit-Limit", strconv.Itoa(res.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(res.Remaining, 0)))
	h.Set("RateLimit-Reset", strconv.Itoa(ceilSecondsOrZero(res.ResetAfter)))
}

func ceilSecondsOrZero(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return ceilSeconds(d)
}

var _ RateLimiter = (*ratelimit.Limiter)(nil)
