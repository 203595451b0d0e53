// Package activity is the contract between a workspace and the control plane about real use:
// the activity credential a workspace gets through its Secret, and what the IDE extension
// (images/workspace/extension) sends to POST /session/{uuid}/activity and reads back.
//
// An open browser tab is not use: code-server's heartbeat beats while any tab is connected.
// The extension reports what is (typing or editing, terminal input, debugging, a focused
// window with the pointer moving, a process keeping the CPU busy) at most once a minute, with
// a credential that can touch that one session's activity and nothing else, never an API key.
//
// The credential is derived, not stored: Token(key, id) is an HMAC of the session id under
// the deployment's activity key (HYPERBOLA_ACTIVITY_KEY), so checking one needs no read, and
// a session's credential dies with its session (its routes answer 404).
package activity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"
)

// TokenPrefix starts every activity credential, so the API tells one from an API key before
// it compares anything, and a leaked one is recognisable in logs and secret scanners.
const TokenPrefix = "hbact_"

// MinKeyBytes is the shortest activity key accepted.
const MinKeyBytes = 32

// The workspace's side of the contract: the Secret key that holds the credential and the
// environment the workspace container gets (kube's Deployment builder sets them).
const (
	// SecretKey is the key of the session's Secret (vs-code-<id>-auth) holding its credential.
	SecretKey = "ACTIVITY_TOKEN"
	// EnvURL is the control plane's base URL as the workspace reaches it; without it the
	// extension stays silent and the heartbeat rule with its cap applies.
	EnvURL = "HYPERBOLA_ACTIVITY_URL"
	// EnvToken is the credential, from the Secret (absent in Secrets made before it existed).
	EnvToken = "HYPERBOLA_ACTIVITY_TOKEN"
	// EnvSession is the session's id.
	EnvSession = "HYPERBOLA_SESSION_ID"
	// EnvCPUThreshold is the CPU use, in cores averaged over a minute, above which a running
	// process counts as use (a build or a test run).
	EnvCPUThreshold = "HYPERBOLA_ACTIVITY_CPU_THRESHOLD"
	// EnvSyncSeconds is the most seconds between two reads of the session's activity state
	// (GET /session/{uuid}/activity) while nothing is reported.
	EnvSyncSeconds = "HYPERBOLA_ACTIVITY_SYNC_SECONDS"
	// EnvReportSeconds is the fewest seconds between two reports of use (60 when absent: at
	// most one a minute). Not a deployment setting: the browser tests shorten it, so that
	// they need not wait a minute for each report.
	EnvReportSeconds = "HYPERBOLA_ACTIVITY_REPORT_SECONDS"
)

// The kinds of use a report names (Report.Kind).
const (
	KindInput = "input" // typing, editing, terminal input, debugging, a focused window in use
	KindCPU   = "cpu"   // a process above the CPU threshold: a build or a test run
	KindStay  = "stay"  // the user clicked "stay" on the going-to-sleep notice
	KindAPI   = "api"   // a client of the API said so (no body, or an API key's call)
)

// Kinds are the kinds a report may name.
var Kinds = []string{KindInput, KindCPU, KindStay, KindAPI}

// Report is the body of POST /session/{uuid}/activity; an empty body is KindAPI.
type Report struct {
	Kind string `json:"kind,omitempty"`
}

// NoticeLead is how long before the sleep the IDE shows its notice ("going to sleep in 60 s
// — click to stay"): the sweep runs once a minute, so the notice is up for a minute or more.
const NoticeLead = 60 * time.Second

// Token returns session id's activity credential under key: TokenPrefix, the id, "_", and
// the unpadded base64url HMAC-SHA256 of the id.
func Token(key []byte, id string) string {
	return TokenPrefix + id + "_" + mac(key, id)
}

// Parse returns the session a credential belongs to, when it is one made with key; ok is
// false otherwise. The MAC is compared in constant time.
func Parse(key []byte, token string) (id string, ok bool) {
	rest, found := strings.CutPrefix(token, TokenPrefix)
	if !found || len(key) == 0 {
		return "", false
	}
	i := strings.IndexByte(rest, '_') // ids have no "_"; the base64url MAC may
	if i <= 0 {
		return "", false
	}
	id, sum := rest[:i], rest[i+1:]
	if !hmac.Equal([]byte(sum), []byte(mac(key, id))) {
		return "", false
	}
	return id, true
}

// IsToken reports whether s has the form of an activity credential (not whether it is valid).
func IsToken(s string) bool { return strings.HasPrefix(s, TokenPrefix) }

func mac(key []byte, id string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("hyperbola-activity\x00"))
	h.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
