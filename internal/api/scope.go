package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// A tenant key sees and acts on its users' sessions and archives only. Everything of another
// user is answered as if it did not exist: a session route is the core's own 404 for the id,
// a create or restore for another user a 404 that names nothing, and a listing filtered on
// another user an empty page. A tenant's listing is its users' part of each page the core
// returns: a page may hold fewer than limit entries (even none) while next_cursor says more
// follow. Other roles are not scoped: the routing table admits them or not.

// RequestClaimer binds an idempotency key to a value for ttl: it returns value when the key
// was free (and is now claimed), and the value that claimed it before otherwise
// (*store.Store's ClaimRequest).
type RequestClaimer interface {
	ClaimRequest(ctx context.Context, key, value string, ttl time.Duration) (string, error)
}

// errNotFound answers a tenant's create or restore for a user it does not hold, naming nothing.
var errNotFound = &session.Error{Kind: session.KindNotFound, Message: "not found"}

// ownSession refuses a tenant a session of another user, and an activity credential every
// session but its own, with the same 404 as a missing one.
func (s *Server) ownSession(ctx context.Context, id string) error {
	p := PrincipalOf(ctx)
	if err := ownCredential(p, id); err != nil || p == nil || p.Role != RoleTenant {
		return err
	}
	sess, err := s.m.Get(ctx, id)
	if err != nil {
		return err
	}
	return owned(p, sess, id)
}

// ownCredential refuses an activity credential every session but its own, with the same 404
// as a missing one, before anything is read; any other caller passes.
func ownCredential(p *Principal, id string) error {
	if p != nil && p.Role == RoleActivity && p.Session != id {
		return session.NotFound(id)
	}
	return nil
}

// owned is ownSession on a session already read.
func owned(p *Principal, sess *session.Session, id string) error {
	if p != nil && p.Role == RoleActivity {
		return ownCredential(p, id)
	}
	if !p.Allows(sess.UserID) {
		return session.NotFound(id)
	}
	return nil
}

// ownBackup refuses a tenant an archive of another user with the same 404 as a missing one.
// The archive is found among its session's (an id is "<session id>-<time>").
func (s *Server) ownBackup(ctx context.Context, id string) error {
	p := PrincipalOf(ctx)
	if p == nil || p.Role != RoleTenant {
		return nil
	}
	sid, _, _ := strings.Cut(id, "-")
	opts := session.BackupListOptions{SessionID: sid, Limit: session.MaxListLimit}
	for {
		res, err := s.m.ListBackups(ctx, opts)
		if err != nil {
			return err
		}
		for _, b := range res.Backups {
			if b.ID == id && p.Allows(b.UserID) {
				return nil
			}
		}
		if res.NextCursor == "" {
			return session.BackupNotFound(id)
		}
		opts.Cursor = res.NextCursor
	}
}

// scopeList narrows a listing's user filter to the caller's users: ok false means the filter
// names a user the tenant does not hold (an empty page); a tenant of one exact user lists
// that user's only.
func scopeList(p *Principal, userID *string) (ok bool) {
	if p == nil || p.Role != RoleTenant {
		return true
	}
	if *userID != "" {
		return p.Allows(*userID)
	}
	if u, one := p.single(); one {
		*userID = u
	}
	return true
}

// scopeCreate refuses a tenant a create (or restore) for a user it does not hold, and scopes
// the idempotency key to the caller and binds it to the request (scopeRequestID).
func (s *Server) scopeCreate(ctx context.Context, req *session.CreateRequest) error {
	p := PrincipalOf(ctx)
	if !p.Allows(req.UserID) {
		return errNotFound
	}
	return s.scopeRequestID(ctx, p, req)
}

// scopeRequestID makes the caller's idempotency key its own and binds it to the request:
// the core sees "k1:" and a digest of the caller's key name and the key, so two callers'
// "demo-1" are two keys; and the key is claimed with a digest of the request, so the same key
// with another body is a 409 naming request_id, while the same body replays the first
// answer. A request the core would refuse claims nothing (a corrected retry may reuse it).
func (s *Server) scopeRequestID(ctx context.Context, p *Principal, req *session.CreateRequest) error {
	if req.RequestID == "" {
		return nil
	}
	name := ""
	if p != nil {
		name = p.Name
	}
	d := sha256.Sum256([]byte(name + "\x00" + req.RequestID))
	scoped := "k1:" + hex.EncodeToString(d[:])
	if s.claims != nil && req.Check() == nil {
		body := *req
		body.RequestID = ""
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		digest := hex.EncodeToString(h[:])
		got, err := s.claims.ClaimRequest(ctx, scoped+":body", digest, s.opts.RequestTTL)
		if err != nil {
			return err
		}
		if got != digest {
			return &session.Error{Kind: session.KindConflict, Field: "request_id",
				Message: "request_id (or the Idempotency-Key header) was used before with another body: " +
					"send a new key for a new request"}
		}
	}
	req.RequestID = scoped
	return nil
}
