package session

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// IDLength is the length of a session id.
const IDLength = 8

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewID returns a random id: IDLength characters of [a-z0-9], starting with a letter, from
// crypto/rand. Uniqueness is not assumed: the caller reserves it atomically and retries.
func NewID() (string, error) {
	var b [IDLength]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	out := make([]byte, IDLength)
	// 256 % 26 and 256 % 36 are not 0: reject-sample to keep every character uniform.
	for i := 0; i < IDLength; {
		n := 36
		if i == 0 {
			n = 26
		}
		limit := byte(256 - 256%n)
		if b[i] >= limit {
			if _, err := rand.Read(b[i : i+1]); err != nil {
				return "", fmt.Errorf("reading random bytes: %w", err)
			}
			continue
		}
		out[i] = idAlphabet[int(b[i])%n]
		i++
	}
	return string(out), nil
}

// ValidID reports whether id is a well-formed session id. An id that is not valid never
// reaches a Kubernetes name or an API call.
func ValidID(id string) bool {
	if len(id) != IDLength || id[0] < 'a' || id[0] > 'z' {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// CheckID returns an invalid-argument error naming field "uuid" when id is malformed.
func CheckID(id string) error {
	if !ValidID(id) {
		return Invalid("uuid", "session id must be %d characters of [a-z0-9] starting with a letter", IDLength)
	}
	return nil
}

// MaxUserIDBytes bounds user ids (an e-mail address is at most 254 bytes).
const MaxUserIDBytes = 254

// CheckUserID validates a user id: present, at most 254 bytes, valid UTF-8, no control characters.
func CheckUserID(userID string) error {
	switch {
	case strings.TrimSpace(userID) == "":
		return Invalid("user_id", "user_id is required")
	case len(userID) > MaxUserIDBytes:
		return Invalid("user_id", "user_id is longer than %d bytes", MaxUserIDBytes)
	case !utf8.ValidString(userID):
		return Invalid("user_id", "user_id is not valid UTF-8")
	}
	for _, r := range userID {
		if unicode.IsControl(r) {
			return Invalid("user_id", "user_id holds a control character")
		}
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as a Go duration string ("15m").
// It also reads a number of seconds.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as a Go duration string; JSON quotes it. (Text rather than
// JSON: encoding/json re-validates and compacts what a json.Marshaler returns, a cost paid per
// session on every listing.)
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalJSON reads "15m" or 900 (seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	// A plain quoted string (what MarshalText writes) is read without a second decoder.
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' && !bytes.ContainsAny(b[1:n-1], "\\\"") &&
		utf8.Valid(b[1:n-1]) {
		v, err := ParseDuration(string(b[1 : n-1]))
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration must be a string such as \"15m\" or a number of seconds")
	}
	if secs < 0 {
		return fmt.Errorf("duration must not be negative")
	}
	*d = Duration(time.Duration(secs * float64(time.Second)))
	return nil
}

// ParseDuration parses a non-negative Go duration string.
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("duration %q: use a form such as \"15m\" or \"1h30m\"", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", s)
	}
	return Duration(v), nil
}
