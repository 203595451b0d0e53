package sweep

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"google.golang.org/api/idtoken"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// HeaderAPIKey carries an API key (the API's header).
const HeaderAPIKey = wire.HeaderAPIKey

// GoogleIssuers are the issuers of Google-signed ID tokens (Cloud Scheduler's OIDC tokens):
// Google documents both spellings.
var GoogleIssuers = [...]string{"https://accounts.google.com", "accounts.google.com"}

// ErrUnauthenticated is what an Authenticator's errors wrap.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator decides whether a request may run the sweep. It returns who the caller is
// (for the log: "oidc:<email>" or "api-key:<digest prefix>"), or an error wrapping
// ErrUnauthenticated.
type Authenticator interface {
	Authenticate(r *http.Request) (caller string, err error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (string, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(r *http.Request) (string, error) { return f(r) }

// TokenValidator checks a Google-signed ID token's signature, expiry and audience and returns
// its payload. *idtoken.Validator implements it (it fetches Google's public keys over HTTP,
// with caching); tests give it an HTTP client that serves their own keys.
type TokenValidator interface {
	Validate(ctx context.Context, token, audience string) (*idtoken.Payload, error)
}

// AuthOptions configure Auth. A request is let in by either an API key or an OIDC token.
type AuthOptions struct {
	// APIKeys are the accepted API keys (sent as X-API-Key, or as a bearer token that is not
	// a JWT). None: API keys are refused.
	APIKeys []string
	// Audience is the audience Cloud Scheduler's token is minted for (SWEEP_OIDC_AUDIENCE;
	// Cloud Scheduler's default is the target URL). With ServiceAccount it turns OIDC on.
	Audience string
	// ServiceAccount is the e-mail of the service account Cloud Scheduler signs as
	// (SWEEP_OIDC_SERVICE_ACCOUNT): the token's verified email must be this one.
	ServiceAccount string
	// Validator checks the token; nil uses idtoken's default (Google's keys over HTTPS).
	Validator TokenValidator
	Logger    *slog.Logger
}

// Auth is the sweep's Authenticator: an OIDC ID token from Cloud Scheduler (issuer Google,
// the configured audience, the configured service account's verified email) or an API key,
// compared in constant time.
type Auth struct {
	keys      [][sha256.Size]byte
	audience  string
	account   string
	validator TokenValidator
}

var _ Authenticator = (*Auth)(nil)

// NewAuth returns an Auth for o. Setting only one of Audience and ServiceAccount is an error:
// a token must be checked for both.
func NewAuth(o AuthOptions) (*Auth, error) {
	a := &Auth{audience: strings.TrimSpace(o.Audience), account: strings.ToLower(strings.TrimSpace(o.ServiceAccount)), validator: o.Validator}
	if (a.audience == "") != (a.account == "") {
		return nil, errors.New("sweep auth: SWEEP_OIDC_AUDIENCE and SWEEP_OIDC_SERVICE_ACCOUNT must be set together")
	}
	for _, k := range o.APIKeys {
		if k = strings.TrimSpace(k); k != "" {
			a.keys = append(a.keys, sha256.Sum256([]byte(k)))
		}
	}
	if a.validator == nil {
		a.validator = validatorFunc(idtoken.Validate)
	}
	if len(a.keys) == 0 && a.audience == "" {
		log := o.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("sweep: neither API keys nor OIDC configured: every sweep request answers 401",
			"component", "sweep")
	}
	return a, nil
}

type validatorFunc func(ctx context.Context, token, audience string) (*idtoken.Payload, error)

func (f validatorFunc) Validate(ctx context.Context, token, audience string) (*idtoken.Payload, error) {
	return f(ctx, token, audience)
}

// OIDC reports whether OIDC tokens are accepted.
func (a *Auth) OIDC() bool { return a.audience != "" }

// Authenticate implements Authenticator.
func (a *Auth) Authenticate(r *http.Request) (string, error) {
	if k := r.Header.Get(HeaderAPIKey); k != "" {
		return a.apiKey(k)
	}
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", fmt.Errorf("%w: no OIDC token (Authorization: Bearer) or API key (X-API-Key)", ErrUnauthenticated)
	}
	tok := strings.TrimSpace(h[7:])
	if strings.Count(tok, ".") != 2 { // not a JWT: an API key sent as a bearer token
		return a.apiKey(tok)
	}
	return a.oidc(r.Context(), tok)
}

func (a *Auth) apiKey(k string) (string, error) {
	d := sha256.Sum256([]byte(k))
	ok := 0
	for i := range a.keys {
		ok |= subtle.ConstantTimeCompare(d[:], a.keys[i][:])
	}
	if ok != 1 {
		return "", fmt.Errorf("%w: unknown API key", ErrUnauthenticated)
	}
	return "api-key:" + hex.EncodeToString(d[:6]), nil
}

func (a *Auth) oidc(ctx context.Context, tok string) (string, error) {
	if !a.OIDC() {
		return "", fmt.Errorf("%w: OIDC tokens are not accepted (SWEEP_OIDC_AUDIENCE is not set)", ErrUnauthenticated)
	}
	p, err := a.validator.Validate(ctx, tok, a.audience)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	if p.Audience != a.audience { // Validate checks it too; a validator that does not is refused here
		return "", fmt.Errorf("%w: token audience %q", ErrUnauthenticated, p.Audience)
	}
	issuerOK := false
	for _, iss := range GoogleIssuers {
		issuerOK = issuerOK || p.Issuer == iss
	}
	if !issuerOK {
		return "", fmt.Errorf("%w: token issuer %q is not Google", ErrUnauthenticated, p.Issuer)
	}
	email, _ := p.Claims["email"].(string)
	if email == "" || !strings.EqualFold(email, a.account) {
		return "", fmt.Errorf("%w: token email %q is not the sweep's service account", ErrUnauthenticated, email)
	}
	if verified, _ := p.Claims["email_verified"].(bool); !verified {
		return "", fmt.Errorf("%w: token email %q is not verified", ErrUnauthenticated, email)
	}
	return "oidc:" + strings.ToLower(email), nil
}
