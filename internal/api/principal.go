package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
)

// Role is what an API key may do. Every route names the roles it admits (the routing table in
// api.go); the authenticate middleware enforces them.
type Role string

// The roles.
const (
	// RoleAdmin may call every route, for every user.
	RoleAdmin Role = "admin"
	// RoleTenant may call the session and backup routes, for its users only: another user's
	// session or archive is a 404, as if it did not exist.
	RoleTenant Role = "tenant"
	// RoleMetrics may read GET /metrics and GET /metrics/prometheus, nothing else.
	RoleMetrics Role = "metrics"
	// RoleSweep may run POST /sweep, nothing else (beside Cloud Scheduler's OIDC token).
	RoleSweep Role = "sweep"
	// RoleActivity is no key's: it is the role of a session's activity credential
	// (internal/activity), which the workspace's IDE extension sends. It may call
	// POST and GET /session/{uuid}/activity for that one session (another session is a 404,
	// as if it did not exist) and nothing else (403).
	RoleActivity Role = "activity"
)

// Roles are every role a key may have, in the order the documentation lists them
// (RoleActivity is a credential's, never a key's).
var Roles = []Role{RoleAdmin, RoleTenant, RoleMetrics, RoleSweep}

// Key is one accepted API key: its name (logs, idempotency scope), the secret, its role and,
// for a tenant, its users: exact user ids or path.Match patterns such as "*@school.edu" (a *
// matches any run of characters but "/").
type Key struct {
	Name  string   `json:"name"`
	Key   string   `json:"key"`
	Role  Role     `json:"role"`
	Users []string `json:"users,omitempty"`
}

// Check reports what is wrong with k, naming the key by its name (never its secret).
func (k Key) Check() error {
	name := k.Name
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("a key has no name")
	}
	if strings.TrimSpace(k.Key) == "" {
		return fmt.Errorf("key %q: key is empty", name)
	}
	if activity.IsToken(strings.TrimSpace(k.Key)) {
		return fmt.Errorf("key %q: a key must not start with %q, the activity credentials' prefix", name, activity.TokenPrefix)
	}
	if k.Role == RoleActivity {
		return fmt.Errorf("key %q: role activity is a workspace's activity credential's, derived from HYPERBOLA_ACTIVITY_KEY, never a key's", name)
	}
	if !slices.Contains(Roles, k.Role) {
		return fmt.Errorf("key %q: unknown role %q (want admin, tenant, metrics or sweep)", name, k.Role)
	}
	if k.Role != RoleTenant {
		if len(k.Users) > 0 {
			return fmt.Errorf("key %q: users are only for role tenant, not %s", name, k.Role)
		}
		return nil
	}
	if len(k.Users) == 0 {
		return fmt.Errorf("key %q: a tenant key needs users (user ids or patterns such as *@school.edu)", name)
	}
	for _, u := range k.Users {
		if err := CheckUserPattern(u); err != nil {
			return fmt.Errorf("key %q: %w", name, err)
		}
	}
	return nil
}

// CheckUserPattern checks one of a tenant's users: an exact user id or a path.Match pattern.
// A pattern that matches every user ("*") is refused: such a key is an admin's.
func CheckUserPattern(p string) error {
	if strings.TrimSpace(p) == "" || p != strings.TrimSpace(p) {
		return fmt.Errorf("user pattern %q is empty or has spaces around it", p)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("user pattern %q is malformed: %w", p, err)
	}
	if strings.Trim(p, "*") == "" {
		return fmt.Errorf("user pattern %q matches every user: give role admin instead", p)
	}
	return nil
}

// CheckKeys checks every named key and that no two keys (plain admin keys included) share a
// name or a secret.
func CheckKeys(plain []string, keys []Key) error {
	names, secrets := map[string]bool{}, map[[sha256.Size]byte]bool{}
	for _, k := range plain {
		if activity.IsToken(strings.TrimSpace(k)) {
			return fmt.Errorf("an admin key (API_KEYS, API_KEY) starts with %q, the activity credentials' prefix", activity.TokenPrefix)
		}
		secrets[sha256.Sum256([]byte(strings.TrimSpace(k)))] = true
	}
	for _, k := range keys {
		if err := k.Check(); err != nil {
			return err
		}
		d := sha256.Sum256([]byte(strings.TrimSpace(k.Key)))
		if names[k.Name] || secrets[d] {
			return fmt.Errorf("key %q: its name or its key is given twice", k.Name)
		}
		names[k.Name], secrets[d] = true, true
	}
	return nil
}

// Principal is the caller a key names: its name, its role and, for a tenant, its users; or
// the caller an activity credential names (role activity, Session its session). The
// authenticate middleware puts it in the request's context (PrincipalOf).
type Principal struct {
	Name    string
	Role    Role
	Users   []string
	Session string // role activity: the one session it may touch
}

// activityPrincipal is the caller of session id's activity credential.
func activityPrincipal(id string) *Principal {
	return &Principal{Name: "activity:" + id, Role: RoleActivity, Session: id}
}

// Allows reports whether the principal may see and act on userID's sessions and archives:
// a tenant only for its users, an activity credential never (it holds one session, not a
// user: ownCredential), every other role (which the routing table admits or not) always.
func (p *Principal) Allows(userID string) bool {
	if p != nil && p.Role == RoleActivity {
		return false
	}
	if p == nil || p.Role != RoleTenant {
		return true
	}
	for _, pat := range p.Users {
		if ok, _ := path.Match(pat, userID); ok {
			return true
		}
	}
	return false
}

// single is the tenant's one user when it is bound to exactly one user id (no pattern):
// its listings can ask the core for that user alone.
func (p *Principal) single() (string, bool) {
	if p == nil || p.Role != RoleTenant || len(p.Users) != 1 || strings.ContainsAny(p.Users[0], `*?[\`) {
		return "", false
	}
	return p.Users[0], true
}

type principalKey struct{}

// PrincipalOf is the caller of an authenticated request (nil on a public route).
func PrincipalOf(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

func withPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// keyring holds the accepted keys as SHA-256 digests, so every comparison has the same
// length and takes the same time whatever the candidate.
type keyring struct {
	digests    [][sha256.Size]byte
	principals []*Principal
}

// newKeyring holds the plain keys (admins, named by a digest prefix) and the named ones.
func newKeyring(plain []string, named []Key) keyring {
	var k keyring
	for _, s := range plain {
		if s = strings.TrimSpace(s); s != "" {
			k.add(s, &Principal{Name: "key-" + keyID(s)[:8], Role: RoleAdmin})
		}
	}
	for _, n := range named {
		k.add(strings.TrimSpace(n.Key), &Principal{Name: n.Name, Role: n.Role, Users: slices.Clone(n.Users)})
	}
	return k
}

func (k *keyring) add(secret string, p *Principal) {
	k.digests = append(k.digests, sha256.Sum256([]byte(secret)))
	k.principals = append(k.principals, p)
}

// match compares the candidate with every key (never stopping early) in constant time and
// returns the principal of the one it is, or nil.
func (k keyring) match(candidate string) *Principal {
	if candidate == "" {
		return nil
	}
	d := sha256.Sum256([]byte(candidate))
	found := -1
	for i := range k.digests {
		if subtle.ConstantTimeCompare(d[:], k.digests[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil
	}
	return k.principals[found]
}
