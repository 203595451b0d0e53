package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// HeaderAPIKey carries the API key ("Authorization: Bearer <key>" is accepted too).
const HeaderAPIKey = wire.HeaderAPIKey

// authenticate refuses a request to a route that is not public without one of the keys (401).
func (s *Server) authenticate(rt route) middleware {
	if rt.public {
		return pass
	}
	return mw(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !s.keys.match(apiKey(r)) {
			wire.WriteError(w, r, s.log, errUnauthenticated)
			return
		}
		next.ServeHTTP(w, r)
	})
}

var errUnauthenticated = &wire.Error{Code: wire.CodeUnauthenticated,
	Message: "a valid API key is required in the X-API-Key header"}

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
