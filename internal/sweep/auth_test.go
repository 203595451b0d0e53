package sweep_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

const (
	testAudience = "https://sweep.example.test/sweep"
	testAccount  = "scheduler@hyperbola-test.iam.gserviceaccount.com"
)

// issuer signs ID tokens the way Google does (RS256, a kid from a JWKS) and serves its JWKS
// from a local server that stands in for https://www.googleapis.com/oauth2/v3/certs.
type issuer struct {
	key *rsa.PrivateKey
	kid string
	srv *httptest.Server
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key, kid: "test-key-1"}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth2/v3/certs" {
			http.NotFound(w, r)
			return
		}
		b64 := base64.RawURLEncoding.EncodeToString
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": is.kid,
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
		}}})
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// validator is idtoken's real Validator, its HTTP client sending Google's certs URL to the
// local JWKS server.
func (is *issuer) validator(t *testing.T) *idtoken.Validator {
	t.Helper()
	target, _ := url.Parse(is.srv.URL)
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host != "www.googleapis.com" {
			return nil, errors.New("unexpected host " + r.URL.Host)
		}
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
		return http.DefaultTransport.RoundTrip(r)
	})}
	v, err := idtoken.NewValidator(context.Background(), option.WithHTTPClient(client))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// token signs claims (defaults: Google issuer, the test audience and account, verified,
// valid for an hour) with key and kid.
func (is *issuer) token(t *testing.T, key *rsa.PrivateKey, edit func(map[string]any)) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": "https://accounts.google.com", "aud": testAudience, "sub": "1234567890",
		"email": testAccount, "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if edit != nil {
		edit(claims)
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": is.kid}) + "." + enc(claims)
	h := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestAuthOIDCAndAPIKeys(t *testing.T) {
	is := newIssuer(t)
	auth, err := sweep.NewAuth(sweep.AuthOptions{
		APIKeys: []string{"key-one", " key-two "}, Audience: testAudience, ServiceAccount: testAccount,
		Validator: is.validator(t), Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	req := func(h map[string]string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/sweep", nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	good := map[string]map[string]string{
		"oidc:" + testAccount: bearer(is.token(t, is.key, nil)),
		"oidc:" + testAccount + " (legacy issuer)": bearer(is.token(t, is.key, func(c map[string]any) {
			c["iss"] = "accounts.google.com"
		})),
		"api-key":                   {"X-API-Key": "key-one"},
		"api-key (trimmed)":         {"X-API-Key": "key-two"},
		"api-key as a bearer token": bearer("key-one"),
	}
	for name, h := range good {
		caller, err := auth.Authenticate(req(h))
		if err != nil {
			t.Errorf("%s: refused: %v", name, err)
			continue
		}
		if !strings.HasPrefix(name, strings.SplitN(caller, ":", 2)[0]) {
			t.Errorf("%s: caller %q", name, caller)
		}
	}
	bad := map[string]map[string]string{
		"nothing":          {},
		"unknown key":      {"X-API-Key": "key-three"},
		"basic auth":       {"Authorization": "Basic a2V5LW9uZTo="},
		"wrong audience":   bearer(is.token(t, is.key, func(c map[string]any) { c["aud"] = "https://other.example.test" })),
		"wrong account":    bearer(is.token(t, is.key, func(c map[string]any) { c["email"] = "intruder@example.com" })),
		"unverified email": bearer(is.token(t, is.key, func(c map[string]any) { c["email_verified"] = false })),
		"no email":         bearer(is.token(t, is.key, func(c map[string]any) { delete(c, "email") })),
		"wrong issuer":     bearer(is.token(t, is.key, func(c map[string]any) { c["iss"] = "https://evil.example.test" })),
		"expired": bearer(is.token(t, is.key, func(c map[string]any) {
			c["exp"] = time.Now().Add(-time.Minute).Unix()
		})),
		"another key's signature": bearer(is.token(t, other, nil)),
		"tampered payload": bearer(func() string {
			parts := strings.Split(is.token(t, is.key, nil), ".")
			p, _ := base64.RawURLEncoding.DecodeString(parts[1])
			p = []byte(strings.Replace(string(p), testAccount, "intruder@hyperbola-test.iam.gserviceaccount.com", 1))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(p) + "." + parts[2]
		}()),
	}
	for name, h := range bad {
		if caller, err := auth.Authenticate(req(h)); err == nil {
			t.Errorf("%s: let in as %q", name, caller)
		} else if !errors.Is(err, sweep.ErrUnauthenticated) {
			t.Errorf("%s: error %v does not wrap ErrUnauthenticated", name, err)
		}
	}
}

func TestAuthWithoutOIDCRefusesTokens(t *testing.T) {
	is := newIssuer(t)
	auth, err := sweep.NewAuth(sweep.AuthOptions{APIKeys: []string{"k"}, Validator: is.validator(t), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/sweep", nil)
	r.Header.Set("Authorization", "Bearer "+is.token(t, is.key, nil))
	if _, err := auth.Authenticate(r); err == nil {
		t.Fatal("an OIDC token was accepted with OIDC off")
	}
	if _, err := sweep.NewAuth(sweep.AuthOptions{Audience: testAudience}); err == nil {
		t.Fatal("an audience without a service account must be refused")
	}
}
