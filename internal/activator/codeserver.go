package activator

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
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

// code-server's own argon2 parameters, the only ones a cookie may carry. code-server hashes
// with node-argon2's defaults (src/node/util.ts: argon2.hash(password); node-argon2 0.31 and
// later: argon2id, version 0x13, m=65536 KiB, t=3, p=4, a 16-byte salt and a 32-byte hash).
// A verification costs what the cookie says and a stranger writes the cookie, so anything
// else is refused before hashing: a crafted cookie cannot ask for more memory or passes.
const (
	argonVariant   = "argon2id"
	argonVersion   = "v=19"
	argonParams    = "m=65536,t=3,p=4"
	argonMemoryKiB = 64 * 1024
	argonTime      = 3
	argonThreads   = 4
	argonSaltBytes = 16
	argonHashBytes = 32
)

// argonHash is the salt and hash of one PHC string with code-server's parameters.
type argonHash struct {
	salt, hash []byte
}

// parseArgon2 takes "$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>" and nothing else.
func parseArgon2(phc string) (*argonHash, error) {
	parts := strings.Split(phc, "$")
	// "", variant, v=19, m=..,t=..,p=.., salt, hash
	if len(parts) != 6 || parts[0] != "" {
		return nil, errors.New("not a PHC string")
	}
	if parts[1] != argonVariant || parts[2] != argonVersion || parts[3] != argonParams {
		return nil, fmt.Errorf("argon2 %q %q %q are not code-server's parameters", parts[1], parts[2], parts[3])
	}
	// the lengths are checked on the text first, so nothing large is decoded either
	enc := base64.RawStdEncoding
	if len(parts[4]) != enc.EncodedLen(argonSaltBytes) || len(parts[5]) != enc.EncodedLen(argonHashBytes) {
		return nil, errors.New("argon2 salt or hash has the wrong length")
	}
	h := &argonHash{}
	var err error
	if h.salt, err = enc.DecodeString(parts[4]); err != nil {
		return nil, fmt.Errorf("argon2 salt: %w", err)
	}
	if h.hash, err = enc.DecodeString(parts[5]); err != nil {
		return nil, fmt.Errorf("argon2 hash: %w", err)
	}
	return h, nil
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
// malformed cookie, or one with other parameters than code-server's, is false.
func codeServerCookieMatches(cookie, password string) bool {
	p, err := parseArgon2(decodeCookie(cookie))
	if err != nil || password == "" {
		return false
	}
	got := argon2.IDKey([]byte(password), p.salt, argonTime, argonMemoryKiB, argonThreads, argonHashBytes)
	return subtle.ConstantTimeCompare(got, p.hash) == 1
}
