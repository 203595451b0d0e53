package activator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Wake links and wake cookies are both "<expiry>.<mac>": the expiry in Unix seconds and
// base64url(HMAC-SHA256(secret, purpose \n id \n expiry)). The session id is not in the token:
// the host names it, and the MAC binds the token to it. The purposes differ, so a cookie
// value is never a link and a link is never a cookie.
const (
	purposeLink   = "hyperbola/wake-link/v1"
	purposeCookie = "hyperbola/wake-cookie/v1"
)

// Limits on wake links.
const (
	// MaxLinkTTL is the longest a wake link may live: a link whose expiry is further away
	// than this when it is used is refused, whoever signed it.
	MaxLinkTTL = 24 * time.Hour
	// DefaultLinkTTL is what WakeLinkRoute gives a link.
	DefaultLinkTTL = time.Hour
	// clockSkew forgives instances whose clocks disagree a little.
	clockSkew = time.Minute
)

// LinkParam is the query parameter that carries a wake link's token.
const LinkParam = "hyperbola_wake"

func mac(secret []byte, purpose, id string, expiry int64) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	m.Write([]byte{'\n'})
	m.Write([]byte(id))
	m.Write([]byte{'\n'})
	m.Write([]byte(strconv.FormatInt(expiry, 10)))
	return m.Sum(nil)
}

func sign(secret []byte, purpose, id string, expiry time.Time) string {
	exp := expiry.Unix()
	return strconv.FormatInt(exp, 10) + "." + base64.RawURLEncoding.EncodeToString(mac(secret, purpose, id, exp))
}

// verify checks token for id and purpose at now, and returns its expiry. The MAC is compared
// in constant time.
func verify(secret []byte, purpose, id, token string, now time.Time) (time.Time, bool) {
	expS, sigS, ok := strings.Cut(token, ".")
	if !ok || len(expS) == 0 || len(expS) > 12 || len(sigS) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return time.Time{}, false
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil || exp <= 0 {
		return time.Time{}, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(sigS)
	if err != nil || !hmac.Equal(sig, mac(secret, purpose, id, exp)) {
		return time.Time{}, false
	}
	expiry := time.Unix(exp, 0)
	if !now.Before(expiry) {
		return expiry, false
	}
	return expiry, true
}

// SignLink returns the token of a wake link for session id that expires at expiry: put it in
// the workspace URL's query as hyperbola_wake=<token> (WakeLink does). The activator refuses
// it after expiry, and refuses it altogether when expiry is more than MaxLinkTTL after the
// moment it is used.
func SignLink(secret []byte, id string, expiry time.Time) string {
	return sign(secret, purposeLink, id, expiry)
}

// VerifyLink reports whether token is a wake link of session id that is valid at now.
func VerifyLink(secret []byte, id, token string, now time.Time) bool {
	expiry, ok := verify(secret, purposeLink, id, token, now)
	return ok && expiry.Sub(now) <= MaxLinkTTL+clockSkew
}

// WakeLink is the URL that wakes session id until expiry: its workspace URL (as the API
// returns it, https://vs-code-<id>.<domain>) with the signed token in the query.
func WakeLink(workspaceURL string, secret []byte, id string, expiry time.Time) string {
	return strings.TrimRight(workspaceURL, "/") + "/?" + LinkParam + "=" + url.QueryEscape(SignLink(secret, id, expiry))
}

func signCookie(secret []byte, id string, expiry time.Time) string {
	return sign(secret, purposeCookie, id, expiry)
}

func verifyCookie(secret []byte, id, value string, now time.Time) bool {
	_, ok := verify(secret, purposeCookie, id, value, now)
	return ok
}
