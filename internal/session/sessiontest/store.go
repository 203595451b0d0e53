package sessiontest

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// TombstoneTTL is how long the fake store keeps a deleted session (as internal/store does by
// default).
const TombstoneTTL = 24 * time.Hour

// Store is a session.Store in memory, with the sweep's indexes (IdleCandidates, Expired,
// Pending, DeferIdle, Lease). It keeps internal/store's rules: Reserve never overwrites (not
// even a tombstone), a deleted session stays a tombstone for TombstoneTTL, List pages oldest
// first and shows tombstones only when asked for state deleted, activity never moves back,
// a held Lock is KindBusy after waiting, an idempotency key keeps its first id.
type Store struct {
	faults
	mu       sync.Mutex
	now      func() time.Time
	recs     map[string]*session.Session
	activity map[string]time.Time
	idle     map[string]time.Time // idle deadline of awake sessions with an idle timeout
	tombs    map[string]time.Time // tombstone expiry
	locks    map[string]heldLock
	tokens   uint64 // the last lock token given out
	leases   map[string]time.Time
	requests map[string]claim
	touches  map[string][]time.Time
	backups  backupRecords
	extended []extendWaiter // Extended's waiters
	extends  map[string]int // lock extensions per session
}

// extendWaiter is a wait of Extended: ch closes once id's lock was extended n times.
type extendWaiter struct {
	id string
	n  int
	ch chan struct{}
}

// heldLock is a taken per-session lock: its holder's token (0 for HoldLock's) and its expiry.
type heldLock struct {
	token uint64
	exp   time.Time
}

// lock is a session.Lock of the fake store.
type lock struct {
	s     *Store
	id    string
	token uint64
}

// Extend moves the lock's expiry to ttl from now (the store's clock), if it is still held.
func (l *lock) Extend(_ context.Context, ttl time.Duration) (bool, error) {
	if err := l.s.err("Extend"); err != nil {
		return false, err
	}
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if !l.s.holds(l) {
		return false, nil
	}
	l.s.locks[l.id] = heldLock{l.token, l.s.now().Add(ttl)}
	l.s.extends[l.id]++
	l.s.extended = slices.DeleteFunc(l.s.extended, func(w extendWaiter) bool {
		if w.id != l.id || l.s.extends[l.id] < w.n {
			return false
		}
		close(w.ch)
		return true
	})
	return true, nil
}

// Release frees the lock if this holder still owns it.
func (l *lock) Release(context.Context) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.locks[l.id].token == l.token {
		delete(l.s.locks, l.id)
	}
	return nil
}

// holds reports whether l is its session's lock and still held. The caller holds s.mu.
func (s *Store) holds(l *lock) bool {
	cur, ok := s.locks[l.id]
	return ok && cur.token == l.token && s.now().Before(cur.exp)
}

// fenced checks that l is session id's lock from this store and still held (as the real
// store's write script does). The caller holds s.mu.
func (s *Store) fenced(l session.Lock, id string) error {
	fl, ok := l.(*lock)
	if !ok || fl == nil || fl.s != s || fl.id != id {
		return &session.Error{Kind: session.KindInternal, Message: fmt.Sprintf("session %s: a write without its lock from this store", id)}
	}
	if !s.holds(fl) {
		return session.LockLost(id)
	}
	return nil
}

type claim struct {
	id      string
	expires time.Time
}

var _ session.Store = (*Store)(nil)

// NewStore returns an empty store on the clock now (time.Now when nil), holding seed.
func NewStore(now func() time.Time, seed ...*session.Session) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{now: now, recs: map[string]*session.Session{}, activity: map[string]time.Time{},
		idle: map[string]time.Time{}, tombs: map[string]time.Time{}, locks: map[string]heldLock{}, extends: map[string]int{},
		leases: map[string]time.Time{}, requests: map[string]claim{}, touches: map[string][]time.Time{}}
	for _, sess := range seed {
		if err := s.Seed(sess); err != nil {
			panic(err)
		}
	}
	return s
}

// Seed writes sess as it is, as if an earlier transition had (no lock needed).
func (s *Store) Seed(sess *session.Session) error {
	if err := check(sess); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(sess)
	return nil
}

// Touches returns the times Touch recorded for id, in order.
func (s *Store) Touches(id string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.touches[id])
}

// IdleDeadline returns the idle deadline of id (last activity + idle timeout, or later when
// deferred), and whether it has one.
func (s *Store) IdleDeadline(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.idle[id]
	return d, ok
}

// HoldLock takes the lock of id as another holder would, until the returned func frees it.
func (s *Store) HoldLock(id string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.locks[id] = heldLock{0, s.now().Add(time.Hour)}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.locks, id)
	}
}

// Locked reports whether someone holds the lock of id.
func (s *Store) Locked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.locks[id]
	return ok && s.now().Before(cur.exp)
}

// Extended returns a channel that closes once the lock of id has been extended n times in
// all (by any holder).
func (s *Store) Extended(id string, n int) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	if s.extends[id] >= n {
		close(ch)
	} else {
		s.extended = append(s.extended, extendWaiter{id, n, ch})
	}
	return ch
}

// HoldLease takes the global lease name as another instance would (held false frees it).
func (s *Store) HoldLease(name string, held bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if held {
		s.leases[name] = s.now().Add(time.Hour)
	} else {
		delete(s.leases, name)
	}
}

// LeaseHeld reports whether the global lease name is held.
func (s *Store) LeaseHeld(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held(s.leases, name)
}

// Len counts the records, tombstones included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireTombstones()
	return len(s.recs)
}

func (s *Store) held(m map[string]time.Time, k string) bool {
	exp, ok := m[k]
	return ok && s.now().Before(exp)
}

func (s *Store) expireTombstones() {
	now := s.now()
	for id, exp := range s.tombs {
		if !now.Before(exp) {
			delete(s.recs, id)
			delete(s.activity, id)
			delete(s.tombs, id)
		}
	}
}

func check(sess *session.Session) error {
	switch {
	case sess == nil:
		return session.Invalid("session", "no session to store")
	case sess.ID == "":
		return session.Invalid("uuid", "session id is empty")
	case sess.UserID == "" || !utf8.ValidString(sess.UserID):
		return session.Invalid("user_id", "user_id must be non-empty valid UTF-8")
	case !sess.State.Valid():
		return session.Invalid("status", "unknown state %q", sess.State)
	}
	return nil
}

// Reserve stores sess only when no record (not even a tombstone) has its id.
func (s *Store) Reserve(_ context.Context, l session.Lock, sess *session.Session) (bool, error) {
	if err := s.err("Reserve"); err != nil {
		return false, err
	}
	if err := check(sess); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fenced(l, sess.ID); err != nil {
		return false, err
	}
	s.expireTombstones()
	if s.recs[sess.ID] != nil {
		return false, nil
	}
	s.write(sess)
	return true, nil
}

// Put overwrites the record and its indexes, while l is held.
func (s *Store) Put(_ context.Context, l session.Lock, sess *session.Session) error {
	if err := s.err("Put"); err != nil {
		return err
	}
	if err := check(sess); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fenced(l, sess.ID); err != nil {
		return err
	}
	s.write(sess)
	return nil
}

func (s *Store) write(sess *session.Session) {
	rec := sess.Clone()
	rec.Password = ""
	s.recs[rec.ID] = rec
	if rec.State == session.StateDeleted {
		s.tombs[rec.ID] = s.now().Add(TombstoneTTL)
		delete(s.idle, rec.ID)
		return
	}
	delete(s.tombs, rec.ID)
	act := latest(rec.LastActivity, rec.CreatedAt, s.activity[rec.ID])
	s.activity[rec.ID] = act
	s.setIdle(rec, act)
}

func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}

func (s *Store) setIdle(rec *session.Session, act time.Time) {
	if rec.State.Awake() && rec.IdleTimeout > 0 {
		s.idle[rec.ID] = act.Add(rec.IdleTimeout.D())
	} else {
		delete(s.idle, rec.ID)
	}
}

// Get returns the record with LastActivity the newest recorded.
func (s *Store) Get(_ context.Context, id string) (*session.Session, error) {
	if err := s.err("Get"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireTombstones()
	return s.get(id)
}

func (s *Store) get(id string) (*session.Session, error) {
	rec := s.recs[id]
	if rec == nil {
		return nil, session.NotFound(id)
	}
	out := rec.Clone()
	if a := s.activity[id]; a.After(out.LastActivity) {
		out.LastActivity = a
	}
	return out, nil
}

// Remove deletes the record and its index entries.
func (s *Store) Remove(_ context.Context, id string) error {
	if err := s.err("Remove"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range []map[string]time.Time{s.activity, s.idle, s.tombs} {
		delete(m, id)
	}
	delete(s.recs, id)
	return nil
}

// Touch records activity at t, never backwards, and moves an awake session's idle deadline.
func (s *Store) Touch(_ context.Context, id string, t time.Time) error {
	if err := s.err("Touch"); err != nil {
		return err
	}
	if t.IsZero() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireTombstones()
	rec := s.recs[id]
	if rec == nil {
		return session.NotFound(id)
	}
	if rec.State == session.StateDeleted {
		return nil
	}
	s.touches[id] = append(s.touches[id], t)
	act := latest(s.activity[id], t)
	s.activity[id] = act
	s.setIdle(rec, act)
	return nil
}

// List pages records oldest first (ties by id), filtered by user and state; tombstones show
// only when filtering by state deleted. The cursor has internal/store's shape.
func (s *Store) List(_ context.Context, opts session.ListOptions) (*session.ListResult, error) {
	if err := s.err("List"); err != nil {
		return nil, err
	}
	limit := opts.Limit
	switch {
	case limit < 0:
		return nil, session.Invalid("limit", "limit must not be negative")
	case limit == 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	if opts.State != "" && !opts.State.Valid() {
		return nil, session.Invalid("status", "unknown status %q", opts.State)
	}
	var after cursor
	if opts.Cursor != "" {
		c, err := decodeCursor(opts.Cursor)
		if err != nil {
			return nil, err
		}
		after = c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireTombstones()
	var match []*session.Session
	for id, rec := range s.recs {
		deleted := rec.State == session.StateDeleted
		if (opts.UserID != "" && rec.UserID != opts.UserID) || (opts.State != "" && rec.State != opts.State) ||
			(opts.State == "" && deleted) || !after.before(rec) {
			continue
		}
		out, _ := s.get(id)
		match = append(match, out)
	}
	sort.Slice(match, func(i, j int) bool { return cursorOf(match[i]).less(cursorOf(match[j])) })
	res := &session.ListResult{Sessions: match}
	if len(match) > limit {
		res.Sessions = match[:limit]
		last := cursorOf(match[limit-1])
		res.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last.ms, 10) + ":" + last.id))
	}
	if res.Sessions == nil {
		res.Sessions = []*session.Session{}
	}
	return res, nil
}

// cursor is a position in creation order; the zero cursor is before everything.
type cursor struct {
	ms  int64
	id  string
	set bool
}

func cursorOf(sess *session.Session) cursor {
	return cursor{ms: sess.CreatedAt.UnixMilli(), id: sess.ID, set: true}
}

func (c cursor) less(d cursor) bool { return c.ms < d.ms || (c.ms == d.ms && c.id < d.id) }

// before reports whether rec comes after the cursor.
func (c cursor) before(rec *session.Session) bool { return !c.set || c.less(cursorOf(rec)) }

func decodeCursor(s string) (cursor, error) {
	bad := session.Invalid("cursor", "cursor is not one this API returned")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	score, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(score, 10, 64)
	if !ok || id == "" || len(id) > 64 || err != nil || n < 0 {
		return cursor{}, bad
	}
	return cursor{ms: n, id: id, set: true}, nil
}

// Lock takes the per-session lock for ttl (on the store's clock), waiting up to wait (real
// time, as internal/store does); KindBusy when it is still held.
func (s *Store) Lock(ctx context.Context, id string, ttl, wait time.Duration) (session.Lock, error) {
	if err := s.err("Lock"); err != nil {
		return nil, err
	}
	if ttl < time.Millisecond {
		return nil, session.Invalid("ttl", "lock ttl must be at least 1ms")
	}
	deadline := time.Now().Add(wait)
	for {
		if l, ok := s.tryLock(id, ttl); ok {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, &session.Error{Kind: session.KindBusy,
				Message: fmt.Sprintf("session %q is busy: another change to it is in progress", id)}
		}
		select {
		case <-ctx.Done():
			return nil, session.Unavailable("redis", ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

func (s *Store) tryLock(id string, ttl time.Duration) (*lock, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.locks[id]; ok && s.now().Before(cur.exp) {
		return nil, false
	}
	s.tokens++
	s.locks[id] = heldLock{s.tokens, s.now().Add(ttl)}
	return &lock{s: s, id: id, token: s.tokens}, true
}

// Lease takes the global lease name without waiting.
func (s *Store) Lease(_ context.Context, name string, ttl time.Duration) (func(context.Context) error, bool, error) {
	if err := s.err("Lease"); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held(s.leases, name) {
		return nil, false, nil
	}
	exp := s.now().Add(ttl)
	s.leases[name] = exp
	return func(context.Context) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.leases[name].Equal(exp) {
			delete(s.leases, name)
		}
		return nil
	}, true, nil
}

// ClaimRequest maps key to id for ttl, or returns the id that claimed it first.
func (s *Store) ClaimRequest(_ context.Context, key, id string, ttl time.Duration) (string, error) {
	if err := s.err("ClaimRequest"); err != nil {
		return "", err
	}
	if key == "" {
		return "", session.Invalid("idempotency_key", "idempotency key is empty")
	}
	if ttl < time.Millisecond {
		return "", session.Invalid("ttl", "idempotency ttl must be at least 1ms")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.requests[key]; ok && s.now().Before(c.expires) {
		return c.id, nil
	}
	s.requests[key] = claim{id: id, expires: s.now().Add(ttl)}
	return id, nil
}

var _ session.Counter = (*Store)(nil)

// Usage counts user's sessions that are not deleted, the awake ones among them, and every
// awake session.
func (s *Store) Usage(_ context.Context, user string) (session.Usage, error) {
	if err := s.err("Usage"); err != nil {
		return session.Usage{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireTombstones()
	var u session.Usage
	for _, rec := range s.recs {
		if rec.State == session.StateDeleted {
			continue
		}
		awake := rec.State.Awake()
		if awake {
			u.Awake++
		}
		if rec.UserID == user {
			u.UserSessions++
			if awake {
				u.UserAwake++
			}
		}
	}
	return u, nil
}

// Ping checks nothing, unless a fault is injected.
func (s *Store) Ping(context.Context) error { return s.err("Ping") }

// due returns up to limit ids of the records at accepts, earliest first.
func (s *Store) due(method string, limit int, at func(id string, rec *session.Session) (time.Time, bool)) ([]string, error) {
	if err := s.err(method); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, session.Invalid("limit", "limit must be positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireTombstones()
	type entry struct {
		id string
		t  time.Time
	}
	var es []entry
	for id, rec := range s.recs {
		if t, ok := at(id, rec); ok {
			es = append(es, entry{id, t})
		}
	}
	sort.Slice(es, func(i, j int) bool {
		return es[i].t.Before(es[j].t) || (es[i].t.Equal(es[j].t) && es[i].id < es[j].id)
	})
	ids := []string{}
	for _, e := range es[:min(limit, len(es))] {
		ids = append(ids, e.id)
	}
	return ids, nil
}

// IdleCandidates returns awake sessions whose idle deadline is before now, most overdue first.
func (s *Store) IdleCandidates(_ context.Context, now time.Time, limit int) ([]string, error) {
	return s.due("IdleCandidates", limit, func(id string, _ *session.Session) (time.Time, bool) {
		d, ok := s.idle[id]
		return d, ok && d.Before(now)
	})
}

// Expired returns sessions (no tombstones) whose ExpiresAt is at or before now.
func (s *Store) Expired(_ context.Context, now time.Time, limit int) ([]string, error) {
	return s.due("Expired", limit, func(_ string, rec *session.Session) (time.Time, bool) {
		return rec.ExpiresAt, rec.State != session.StateDeleted && !rec.ExpiresAt.IsZero() && !rec.ExpiresAt.After(now)
	})
}

// Pending returns sessions (no tombstones) with a pending step, least recently updated first.
func (s *Store) Pending(_ context.Context, limit int) ([]string, error) {
	return s.due("Pending", limit, func(_ string, rec *session.Session) (time.Time, bool) {
		since := rec.PendingSince
		if since.IsZero() {
			since = latest(rec.UpdatedAt, rec.CreatedAt)
		}
		return since, rec.State != session.StateDeleted && rec.Pending != session.PendingNone
	})
}

// DeferIdle moves an idle deadline later (never earlier); sessions without one are left.
func (s *Store) DeferIdle(_ context.Context, id string, until time.Time) error {
	if err := s.err("DeferIdle"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.idle[id]; ok && until.After(d) {
		s.idle[id] = until
	}
	return nil
}

// Stuck returns the sessions (no tombstones) whose pending step began before before, oldest
// first, at most limit, and how many there are in all (as internal/store does: a record
// without PendingSince is dated by its last update).
func (s *Store) Stuck(_ context.Context, before time.Time, limit int) ([]*session.Session, int, error) {
	if err := s.err("Stuck"); err != nil {
		return nil, 0, err
	}
	if limit <= 0 {
		return nil, 0, session.Invalid("limit", "limit must be positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireTombstones()
	var stuck []*session.Session
	for id, rec := range s.recs {
		if rec.State == session.StateDeleted || rec.Pending == session.PendingNone {
			continue
		}
		out, _ := s.get(id)
		if out.PendingSince.IsZero() {
			out.PendingSince = latest(rec.UpdatedAt, rec.CreatedAt)
		}
		if out.PendingSince.Before(before) {
			stuck = append(stuck, out)
		}
	}
	sort.Slice(stuck, func(i, j int) bool {
		a, b := stuck[i], stuck[j]
		return a.PendingSince.Before(b.PendingSince) || (a.PendingSince.Equal(b.PendingSince) && a.ID < b.ID)
	})
	return stuck[:min(limit, len(stuck))], len(stuck), nil
}
