package activator

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/crypto/argon2"
)

// CodeServerCookie is the cookie code-server sets on the workspace's host at login: an argon2
// hash (PHC string, "$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>") of the IDE password. The
// activator is served on the same host, so a browser that has logged in to the IDE before
// sends it, and its owner wakes the workspace without typing the password again.
const CodeServerCookie = "code-server-session"

// Bounds on the argon2 parameters a cookie may ask for: a verification costs what the cookie
// says, and a stranger writes the cookie. code-server's (node-argon2's defaults) are
// m=65536 (64 MiB), t=3, p=4.
const (
	maxArgonMemoryKiB = 64 * 1024
	maxArgonTime      = 10
	maxArgonThreads   = 8
	maxArgonBytes     = 128
)

// argonParams is one parsed PHC string.
type argonParams struct {
	variant      string // argon2id or argon2i
	memory, time uint32
	threads      uint8
	salt, hash   []byte
}

func parseArgon2(phc string) (*argonParams, error) {
	parts := strings.Split(phc, "$")
	// "", variant, v=19, m=..,t=..,p=.., salt, hash
	if len(parts) != 6 || parts[0] != "" {
		return nil, fmt.Errorf("not a PHC string")
	}
	p := &argonParams{variant: parts[1]}
	if p.variant != "argon2id" && p.variant != "argon2i" {
		return nil, fmt.Errorf("argon2 variant %q is not supported", p.variant)
	}
	if parts[2] != "v=19" {
		return nil, fmt.Errorf("argon2 version %q is not supported", parts[2])
	}
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &threads); err != nil {
		return nil, fmt.Errorf("argon2 parameters %q: %w", parts[3], err)
	}
	if p.memory < 8 || p.memory > maxArgonMemoryKiB || p.time < 1 || p.time > maxArgonTime || threads < 1 || threads > maxArgonThreads {
		return nil, fmt.Errorf("argon2 parameters %q are out of bounds", parts[3])
	}
	p.threads = uint8(threads)
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 || len(p.salt) > maxArgonBytes {
		return nil, fmt.Errorf("argon2 salt is malformed")
	}
	if p.hash, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.hash) < 16 || len(p.hash) > maxArgonBytes {
		return nil, fmt.Errorf("argon2 hash is malformed")
	}
	return p, nil
}

// decodeCookie undoes Express's percent-encoding of cookie values.
func decodeCookie(v string) string {
	if dec, err := url.PathUnescape(v); err == nil {
		return dec
	}
	return v
}

// codeServerCookieMatches reports whether cookie is an argon2 hash of password, as code-server
// writes it (Express percent-encodes cookie values). The comparison is constant time; a
// malformed or over-expensive cookie is false.
func codeServerCookieMatches(cookie, password string) bool {
	p, err := parseArgon2(decodeCookie(cookie))
	if err != nil || password == "" {
		return false
	}
	var got []byte
	if p.variant == "argon2id" {
		got = argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.hash)))
	} else {
		got = argon2.Key([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.hash)))
	}
	return subtle.ConstantTimeCompare(got, p.hash) == 1
}
