package activity

import (
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	key := []byte(strings.Repeat("k", MinKeyBytes))
	tok := Token(key, "ab12cd34")
	if !IsToken(tok) || !strings.HasPrefix(tok, "hbact_ab12cd34_") {
		t.Fatalf("token %q", tok)
	}
	if id, ok := Parse(key, tok); !ok || id != "ab12cd34" {
		t.Fatalf("Parse(own token) = %q, %v", id, ok)
	}
	other := []byte(strings.Repeat("o", MinKeyBytes))
	for name, bad := range map[string]string{
		"another key":       Token(other, "ab12cd34"),
		"another session":   strings.Replace(tok, "ab12cd34", "zz12cd34", 1),
		"truncated":         tok[:len(tok)-1],
		"no prefix":         strings.TrimPrefix(tok, TokenPrefix),
		"an API key":        "0123456789abcdef0123456789abcdef",
		"empty":             "",
		"prefix only":       TokenPrefix,
		"no separator":      TokenPrefix + "ab12cd34",
		"empty id":          TokenPrefix + "_" + mac(key, ""),
		"mac of another id": TokenPrefix + "ab12cd34_" + mac(key, "zz12cd34"),
	} {
		if id, ok := Parse(key, bad); ok {
			t.Errorf("%s: Parse(%q) accepted it as %q", name, bad, id)
		}
	}
	if _, ok := Parse(nil, tok); ok {
		t.Error("Parse with no key accepted a token")
	}
}
