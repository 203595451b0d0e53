package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Redis keys of the queue, under the prefix.
const (
	keyPending         = "events:pending"          // list: queued events, oldest first (JSON)
	keyPendingSessions = "events:pending-sessions" // hash: session id → events queued
	keyDead            = "events:dead"             // list: events Firestore refused as malformed
)

// enqueueTimeout bounds queueing an event, which runs even when the caller's context is done.
const enqueueTimeout = 5 * time.Second

func (r *Recorder) key(k string) string { return r.opts.Prefix + k }

// enqueue pushes p onto the queue and counts it against its session, atomically.
func (r *Recorder) enqueue(ctx context.Context, p *pendingEvent, cause error) error {
	if r.rdb == nil {
		return errors.New("no redis queue configured")
	}
	p.QueuedAt = r.opts.Now().UTC()
	if cause != nil {
		p.Error = cause.Error()
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding queued event: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	_, err = r.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.RPush(ctx, r.key(keyPending), b)
		pipe.HIncrBy(ctx, r.key(keyPendingSessions), p.Event.SessionID, 1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: queueing %s event of session %s: %w", p.Event.Type, p.Event.SessionID, err)
	}
	return nil
}

// popScript removes the queue's head only if it is still ARGV[1] (another Flush may have taken
// it), then moves it to the dead list when ARGV[3] is "1", and uncounts it from its session.
var popScript = redis.NewScript(`
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then return 0 end
redis.call('LPOP', KEYS[1])
if ARGV[3] == '1' then redis.call('RPUSH', KEYS[3], ARGV[1]) end
local n = redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
if n <= 0 then redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1
`)

// FlushResult is what one Flush did.
type FlushResult struct {
	// Written is how many queued events Firestore took.
	Written int `json:"written"`
	// Dead is how many Firestore refused as malformed: they were moved to the dead list.
	Dead int `json:"dead"`
	// Remaining is how many are still queued.
	Remaining int `json:"remaining"`
}

// Flush writes the queued events to Firestore, oldest first, up to FlushLimit of them. It
// stops at the first event Firestore cannot take for now (and returns that error, with the
// event still queued); an event Firestore refuses as malformed is moved to the dead list and
// logged. Flushes may run at once on several instances: a write is idempotent and an event
// leaves the queue only once.
func (r *Recorder) Flush(ctx context.Context) (*FlushResult, error) {
	res := &FlushResult{}
	if r.rdb == nil {
		return res, nil
	}
	keys := []string{r.key(keyPending), r.key(keyPendingSessions), r.key(keyDead)}
	for range r.opts.FlushLimit {
		raw, err := r.rdb.LIndex(ctx, keys[0], 0).Result()
		if errors.Is(err, redis.Nil) {
			break
		}
		if err != nil {
			return r.remaining(ctx, res), session.Unavailable("redis", fmt.Errorf("reading the event queue: %w", err))
		}
		var p pendingEvent
		dead := false
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			r.log.ErrorContext(ctx, "undecodable queued event moved to the dead list", "err", err, "raw", raw)
			dead = true
		} else if err := checkEvent(&p.Event); err != nil || p.ID == "" {
			r.log.ErrorContext(ctx, "invalid queued event moved to the dead list", "err", err, "raw", raw)
			dead = true
		} else if err := r.writeOnce(ctx, &p, r.opts.AttemptTimeout); err != nil {
			if retryable(err) {
				return r.remaining(ctx, res), fmt.Errorf("flushing queued events (%d written): %w", res.Written, session.Unavailable("firestore", err))
			}
			r.log.ErrorContext(ctx, "firestore refused a queued event; moved to the dead list", "id", p.Event.SessionID, "type", p.Event.Type, "err", err)
			dead = true
		}
		if !dead {
			r.downUntil.Store(0)
		}
		flag := "0"
		if dead {
			flag = "1"
		}
		n, err := popScript.Run(ctx, r.rdb, keys, raw, p.Event.SessionID, flag).Int()
		if err != nil {
			return r.remaining(ctx, res), session.Unavailable("redis", fmt.Errorf("dequeueing an event: %w", err))
		}
		if n == 1 {
			if dead {
				res.Dead++
			} else {
				res.Written++
			}
		}
	}
	if res.Written > 0 || res.Dead > 0 {
		r.log.InfoContext(ctx, "queued events flushed", "written", res.Written, "dead", res.Dead)
	}
	return r.remaining(ctx, res), nil
}

func (r *Recorder) remaining(ctx context.Context, res *FlushResult) *FlushResult {
	if n, err := r.rdb.LLen(ctx, r.key(keyPending)).Result(); err == nil {
		res.Remaining = int(n)
	}
	return res
}

// PendingInfo tells which sessions have events waiting in the queue: their durable records
// are behind Kubernetes and Redis until Flush writes them.
type PendingInfo struct {
	// Events is how many events are queued.
	Events int `json:"events"`
	// Sessions maps a session id to its queued events.
	Sessions map[string]int `json:"sessions"`
	// Dead is how many events Firestore refused and were set aside (they need a person).
	Dead int `json:"dead"`
}

// Pending reports the queue.
func (r *Recorder) Pending(ctx context.Context) (*PendingInfo, error) {
	info := &PendingInfo{Sessions: map[string]int{}}
	if r.rdb == nil {
		return info, nil
	}
	pipe := r.rdb.Pipeline()
	n := pipe.LLen(ctx, r.key(keyPending))
	by := pipe.HGetAll(ctx, r.key(keyPendingSessions))
	dead := pipe.LLen(ctx, r.key(keyDead))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, session.Unavailable("redis", fmt.Errorf("reading the event queue: %w", err))
	}
	info.Events, info.Dead = int(n.Val()), int(dead.Val())
	for id, v := range by.Val() {
		if c, err := strconv.Atoi(v); err == nil && c > 0 {
			info.Sessions[id] = c
		}
	}
	return info, nil
}

// IsPending reports whether session id has events waiting in the queue.
func (r *Recorder) IsPending(ctx context.Context, id string) (bool, error) {
	if r.rdb == nil {
		return false, nil
	}
	n, err := r.rdb.HGet(ctx, r.key(keyPendingSessions), id).Int()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, session.Unavailable("redis", fmt.Errorf("reading the event queue: %w", err))
	}
	return n > 0, nil
}
