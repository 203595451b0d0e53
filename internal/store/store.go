// Package store keeps session records, their indexes, activity, locks and idempotency keys in
// Redis. *Store implements session.Store.
//
// Key layout (every key under the prefix, "hyperbola:" by default):
//
//	s:<id>          string  the session's JSON (Password always cleared); a deleted session is
//	                        kept as a tombstone that expires after TombstoneTTL
//	u:<user>        zset    the user's sessions (tombstones included), score = created ms
//	created         zset    every session but tombstones, score = created ms
//	state:<state>   zset    sessions in that state (state:deleted holds the tombstones),
//	                        score = created ms
//	activity        zset    last activity, unix ms; only ever moves forward (ZADD GT)
//	idle            zset    idle deadline = last activity + idle timeout, unix ms; only for
//	                        creating, running and waking sessions with an idle timeout
//	idlecfg         hash    id → idle timeout ms, for the sessions that are in idle
//	expires         zset    ExpiresAt, unix ms, for the sweep's TTL deletions (no tombstones)
//	pending         zset    sessions with a pending step, score = when the step began, ms
//	                        (PendingSince; no tombstones)
//	tombstones      zset    tombstone expiry, unix ms, so expired tombstones leave the indexes
//	tombuser        hash    id → user of a tombstone (to clean u:<user> once it has expired)
//	lock:<id>       string  the per-session lock: a random token, with an expiry
//	lease:<name>    string  a global lease ("one sweep at a time"): a random token, with an expiry
//	req:<key>       string  idempotency key → session id, with an expiry
//
// Live records carry no Redis expiry: SESSION_TTL is enforced by the sweep (Expired), which
// deletes the workspace with its backup; a record that vanished on its own would orphan the
// workspace's Kubernetes objects.
//
// The multi-key Lua scripts assume a single Redis node (Memorystore basic or standard tier);
// see scripts.go.
package store

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/ratelimit"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// DefaultPrefix is the key prefix used when New is given "".
const DefaultPrefix = "hyperbola:"

// DefaultTombstoneTTL is how long a deleted session stays readable when Options leaves it 0.
const DefaultTombstoneTTL = 24 * time.Hour

// Listing limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Options tunes a Store. The zero value is usable.
type Options struct {
	// TombstoneTTL is how long a deleted session's record is kept (DefaultTombstoneTTL when 0).
	TombstoneTTL time.Duration
	// Now is the clock (time.Now when nil). Tests set it.
	Now func() time.Time
	// Logger receives warnings (slog.Default when nil).
	Logger *slog.Logger
}

// Store is session.Store on Redis.
type Store struct {
	rdb          redis.UniversalClient
	prefix       string
	tombstoneTTL time.Duration
	now          func() time.Time
	log          *slog.Logger
}

var _ session.Store = (*Store)(nil)

// New returns a Store that keeps its keys under prefix (DefaultPrefix when "").
func New(rdb redis.UniversalClient, prefix string, opts Options) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	s := &Store{rdb: rdb, prefix: prefix, tombstoneTTL: opts.TombstoneTTL, now: opts.Now, log: opts.Logger}
	if s.tombstoneTTL <= 0 {
		s.tombstoneTTL = DefaultTombstoneTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// Prefix returns the key prefix.
func (s *Store) Prefix() string { return s.prefix }

func (s *Store) key(parts ...string) string { return s.prefix + strings.Join(parts, "") }

func (s *Store) recordKey(id string) string { return s.prefix + "s:" + id }

func unavailable(err error) error { return session.Unavailable("redis", err) }

// ms is t in unix milliseconds, 0 for the zero time.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Reserve stores sess only when no record (not even a tombstone) has its id, while l (the
// session's lock) is held.
func (s *Store) Reserve(ctx context.Context, l session.Lock, sess *session.Session) (bool, error) {
	return s.write(ctx, "reserve", l, sess)
}

// Put overwrites the record and moves its index entries in the same atomic step. A deleted
// session is kept as a tombstone for TombstoneTTL: Get still finds it, List shows it only
// when filtering by state deleted. It writes only while l (the session's lock) is held,
// checked in the same atomic step: session.LockLost when it is not.
func (s *Store) Put(ctx context.Context, l session.Lock, sess *session.Session) error {
	_, err := s.write(ctx, "put", l, sess)
	return err
}

func (s *Store) write(ctx context.Context, mode string, l session.Lock, sess *session.Session) (bool, error) {
	if sess == nil {
		return false, session.Invalid("session", "no session to store")
	}
	if sess.ID == "" {
		return false, session.Invalid("uuid", "session id is empty")
	}
	if sess.UserID == "" || !utf8.ValidString(sess.UserID) {
		// The scripts find the old user index from the record's JSON, which holds valid UTF-8.
		return false, session.Invalid("user_id", "user_id must be non-empty valid UTF-8")
	}
	if !sess.State.Valid() {
		return false, session.Invalid("status", "unknown state %q", sess.State)
	}
	lockKey, token, err := s.fence(l, sess.ID)
	if err != nil {
		return false, err
	}
	rec := *sess
	rec.Password = ""
	b, err := json.Marshal(&rec)
	if err != nil {
		return false, fmt.Errorf("encoding session %s: %w", sess.ID, err)
	}
	act := max(ms(sess.LastActivity), ms(sess.CreatedAt))
	idle := int64(0)
	if sess.IdleTimeout > 0 {
		idle = max(sess.IdleTimeout.D().Milliseconds(), 1)
	}
	aw := "0"
	if sess.State.Awake() {
		aw = "1"
	}
	pending := ""
	if sess.Pending != session.PendingNone {
		// oldest step first: the sweep drives the longest-waiting sessions first, and a step
		// stuck for too long is found by score
		since := cmp.Or(ms(sess.PendingSince), ms(sess.UpdatedAt), ms(sess.CreatedAt))
		pending = strconv.FormatInt(since, 10)
	}
	n, err := writeScript.Run(ctx, s.rdb, []string{s.recordKey(sess.ID), lockKey},
		s.prefix, mode, sess.ID, b, sess.UserID, string(sess.State),
		ms(sess.CreatedAt), act, idle, ms(sess.ExpiresAt),
		max(s.tombstoneTTL.Milliseconds(), 1), ms(s.now()), aw, pending, token,
	).Int()
	if err != nil {
		return false, unavailable(fmt.Errorf("%s session %s: %w", mode, sess.ID, err))
	}
	if n == -1 {
		return false, session.LockLost(sess.ID)
	}
	return n == 1, nil
}

// Get returns the record with LastActivity the newest of the record's and the activity
// index's, in one round trip (which also takes the request's rate-limit decision, if its
// context carries one: ratelimit.Pending).
func (s *Store) Get(ctx context.Context, id string) (*session.Session, error) {
	pipe := s.rdb.Pipeline()
	settle := ratelimit.PendingFrom(ctx).Ride(ctx, pipe) // the request's limit, in the same trip
	rec := pipe.Get(ctx, s.recordKey(id))
	act := pipe.ZScore(ctx, s.key("activity"), id)
	_, _ = pipe.Exec(ctx) // each command's own error is read below
	if err := settle(); err != nil {
		return nil, err
	}
	raw, err := rec.Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, session.NotFound(id)
	case err != nil:
		return nil, unavailable(fmt.Errorf("get session %s: %w", id, err))
	}
	var score string
	if v, err := act.Result(); err == nil {
		score = strconv.FormatFloat(v, 'f', 0, 64)
	} else if !errors.Is(err, redis.Nil) {
		return nil, unavailable(fmt.Errorf("get activity of %s: %w", id, err))
	}
	return decode(id, raw, score)
}

// decode reads a stored record and merges the activity score (unix ms, "" when absent).
func decode(id string, raw []byte, activity string) (*session.Session, error) {
	sess, err := session.DecodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("decoding session %s: %w", id, err)
	}
	if activity != "" {
		v, err := strconv.ParseFloat(activity, 64)
		if err != nil {
			return nil, fmt.Errorf("activity of session %s: %w", id, err)
		}
		if t := time.UnixMilli(int64(v)); t.After(sess.LastActivity) {
			sess.LastActivity = t
		}
	}
	return sess, nil
}

// Remove deletes the record and every index entry of id. Removing an unknown id is not an
// error. The lock and idempotency keys are left to expire.
func (s *Store) Remove(ctx context.Context, id string) error {
	args := []any{s.prefix, id}
	for _, st := range session.States {
		args = append(args, string(st))
	}
	if err := removeScript.Run(ctx, s.rdb, []string{s.recordKey(id)}, args...).Err(); err != nil {
		return unavailable(fmt.Errorf("remove session %s: %w", id, err))
	}
	return nil
}

// Touch records activity at t, never moving it backwards, and moves the idle deadline of an
// awake session to its newest activity plus its idle timeout, in one round trip. It reports a
// *session.Error of KindNotFound when there is no record; touching a tombstone, or touching
// with the zero time, does nothing.
func (s *Store) Touch(ctx context.Context, id string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	n, err := touchScript.Run(ctx, s.rdb, []string{s.recordKey(id)}, s.prefix, id, ms(t)).Int()
	if err != nil {
		return unavailable(fmt.Errorf("touch session %s: %w", id, err))
	}
	if n == 0 {
		return session.NotFound(id)
	}
	return nil
}

// List pages records oldest first by creation time (ties by id), in one round trip. Filtering
// by user reads the user's index, by state alone the state's set, and no filter the created
// index; tombstones show only when filtering by state deleted. Limit is 100 by default and
// at most 1000. One call examines at most 10*limit+1000 index entries, so a rarely matching
// user+state filter can return a short (even empty) page with a cursor. The cursor is opaque
// ("<created ms>:<id>", base64) and stays valid under inserts and deletions, including the
// deletion of the session it points at.
func (s *Store) List(ctx context.Context, opts session.ListOptions) (*session.ListResult, error) {
	limit, err := pageLimit(opts.Limit)
	if err != nil {
		return nil, err
	}
	if opts.State != "" && !opts.State.Valid() {
		return nil, session.Invalid("status", "unknown status %q", opts.State)
	}
	var cs, cid string
	if opts.Cursor != "" {
		c, id, err := decodeCursor(opts.Cursor)
		if err != nil {
			return nil, err
		}
		cs, cid = strconv.FormatInt(c, 10), id
	}
	var index, include, exclude string
	switch {
	case opts.UserID != "" && opts.State != "":
		index, include = "u:"+opts.UserID, "state:"+string(opts.State)
	case opts.UserID != "":
		index, exclude = "u:"+opts.UserID, "state:"+string(session.StateDeleted)
	case opts.State != "":
		index = "state:" + string(opts.State)
	default:
		index = "created"
	}
	maxScan := 10*limit + 1000
	cmd, err := s.runRiding(ctx, listScript, nil, s.prefix, index, include, exclude, cs, cid, limit, maxScan)
	if err != nil {
		return nil, err
	}
	v, err := cmd.Slice()
	if err != nil {
		return nil, unavailable(fmt.Errorf("list sessions: %w", err))
	}
	if len(v) < 3 || (len(v)-3)%3 != 0 {
		return nil, fmt.Errorf("list sessions: unexpected reply of %d items", len(v))
	}
	res := &session.ListResult{Sessions: make([]*session.Session, 0, (len(v)-3)/3)}
	if more, _ := v[0].(int64); more == 1 {
		score, _ := v[1].(string)
		id, _ := v[2].(string)
		c, err := strconv.ParseInt(score, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list sessions: cursor score %q: %w", score, err)
		}
		res.NextCursor = encodeCursor(c, id)
	}
	for i := 3; i < len(v); i += 3 {
		id, _ := v[i].(string)
		raw, _ := v[i+1].(string)
		act, _ := v[i+2].(string)
		sess, err := decode(id, []byte(raw), act)
		if err != nil {
			return nil, err
		}
		// The indexes are kept in step by the scripts; this only guards against a record
		// written by something else.
		if (opts.UserID != "" && sess.UserID != opts.UserID) || (opts.State != "" && sess.State != opts.State) {
			s.log.WarnContext(ctx, "store: index entry disagrees with its record", "id", id, "index", index)
			continue
		}
		res.Sessions = append(res.Sessions, sess)
	}
	return res, nil
}

// pageLimit is the page size a listing asked for: DefaultListLimit for 0, at most
// MaxListLimit.
func pageLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, session.Invalid("limit", "limit must not be negative")
	case limit == 0:
		return DefaultListLimit, nil
	case limit > MaxListLimit:
		return MaxListLimit, nil
	}
	return limit, nil
}

// encodeCursor returns the opaque cursor for the position after (created ms, id).
func encodeCursor(created int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(created, 10) + ":" + id))
}

func decodeCursor(c string) (int64, string, error) {
	bad := session.Invalid("cursor", "cursor is not one this API returned")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", bad
	}
	score, id, ok := strings.Cut(string(b), ":")
	if !ok || id == "" || len(id) > 64 {
		return 0, "", bad
	}
	n, err := strconv.ParseInt(score, 10, 64)
	if err != nil || n < 0 {
		return 0, "", bad
	}
	return n, id, nil
}

// IdleCandidates returns up to limit ids of creating, running or waking sessions whose idle
// deadline (last activity + idle timeout) is before now, the most overdue first. The sweep
// probes only these, so its cost follows the idle sessions, not all of them.
func (s *Store) IdleCandidates(ctx context.Context, now time.Time, limit int) ([]string, error) {
	return s.due(ctx, "idle", "("+strconv.FormatInt(now.UnixMilli(), 10), limit)
}

// Expired returns up to limit ids of sessions (tombstones excluded) whose ExpiresAt is at or
// before now, the oldest first.
func (s *Store) Expired(ctx context.Context, now time.Time, limit int) ([]string, error) {
	return s.due(ctx, "expires", strconv.FormatInt(now.UnixMilli(), 10), limit)
}

// Pending returns up to limit ids of sessions with a pending step (awaiting readiness, a
// backup or removal), the least recently updated first. The sweep drives them forward
// (sweep.Store).
func (s *Store) Pending(ctx context.Context, limit int) ([]string, error) {
	return s.due(ctx, "pending", "+inf", limit)
}

// DeferIdle moves the idle deadline of an awake session to until, when that is later than its
// deadline now; its activity is left alone, and the next Touch or Put sets the deadline from
// the activity again. The sweep uses it to leave a workspace whose probe failed unprobed for
// a while (sweep.Store). Sessions without an idle deadline are left alone.
func (s *Store) DeferIdle(ctx context.Context, id string, until time.Time) error {
	err := s.rdb.ZAddArgs(ctx, s.key("idle"), redis.ZAddArgs{
		XX: true, GT: true, Members: []redis.Z{{Score: float64(until.UnixMilli()), Member: id}},
	}).Err()
	if err != nil {
		return unavailable(fmt.Errorf("defer idle deadline of %s: %w", id, err))
	}
	return nil
}

func (s *Store) due(ctx context.Context, index, maxScore string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, session.Invalid("limit", "limit must be positive")
	}
	ids, err := s.rdb.ZRangeByScore(ctx, s.key(index), &redis.ZRangeBy{
		Min: "-inf", Max: maxScore, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, unavailable(fmt.Errorf("read %s index: %w", index, err))
	}
	return ids, nil
}

// Ping checks the connection.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable(fmt.Errorf("ping: %w", err))
	}
	return nil
}

// runRiding runs script as Script.Run does, with the request's rate-limit decision
// (ratelimit.Pending, when ctx carries one) in the same round trip. The error is the
// decision's verdict (a refusal, or a limiter that could not answer); the script's own
// outcome is the Cmd's.
func (s *Store) runRiding(ctx context.Context, script *redis.Script, keys []string, args ...any) (*redis.Cmd, error) {
	p := ratelimit.PendingFrom(ctx)
	if p == nil {
		return script.Run(ctx, s.rdb, keys, args...), nil
	}
	pipe := s.rdb.Pipeline()
	settle := p.Ride(ctx, pipe)
	cmd := script.EvalSha(ctx, pipe, keys, args...)
	_, _ = pipe.Exec(ctx) // each command's own error is read below
	if err := settle(); err != nil {
		return nil, err
	}
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		return script.Run(ctx, s.rdb, keys, args...), nil // loads it for the next time
	}
	return cmd, nil
}
