package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// stuckScript reads the oldest entries of the pending index below a score, with their
// records and activity, and counts them all, in one round trip.
//
// ARGV: prefix, before ms (exclusive), limit.
// Returns {count, id1, since1, json1, activity1, id2, ...}; json is false when the record is
// gone (the write and remove scripts keep the index in step, so only a record written by
// something else can be missing).
var stuckScript = redis.NewScript(`
local P = ARGV[1]
local idx = P .. 'pending'
local below = '(' .. ARGV[2]
local out = {redis.call('ZCOUNT', idx, '-inf', below)}
local r = redis.call('ZRANGEBYSCORE', idx, '-inf', below, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #r, 2 do
  local id = r[i]
  table.insert(out, id)
  table.insert(out, string.format('%.0f', tonumber(r[i + 1])))
  table.insert(out, redis.call('GET', P .. 's:' .. id))
  table.insert(out, redis.call('ZSCORE', P .. 'activity', id) or '')
end
return out
`)

// Stuck returns the sessions whose pending step began before before, the oldest first, at
// most limit of them, with their records, and how many there are in all, in one round trip.
// A record that has no PendingSince (written before the field existed) gets the time its
// index entry is scored by. The sweep's report and /metrics name them, so that a step the
// cluster never finishes (a pod never ready, a backup Job that hangs) is seen.
func (s *Store) Stuck(ctx context.Context, before time.Time, limit int) ([]*session.Session, int, error) {
	if limit <= 0 {
		return nil, 0, session.Invalid("limit", "limit must be positive")
	}
	v, err := stuckScript.Run(ctx, s.rdb, nil, s.prefix, before.UnixMilli(), limit).Slice()
	if err != nil {
		return nil, 0, unavailable(fmt.Errorf("read stuck sessions: %w", err))
	}
	if len(v) < 1 || (len(v)-1)%4 != 0 {
		return nil, 0, fmt.Errorf("read stuck sessions: unexpected reply of %d items", len(v))
	}
	total, _ := v[0].(int64)
	out := make([]*session.Session, 0, (len(v)-1)/4)
	for i := 1; i < len(v); i += 4 {
		id, _ := v[i].(string)
		score, _ := v[i+1].(string)
		raw, ok := v[i+2].(string)
		act, _ := v[i+3].(string)
		if !ok {
			s.log.WarnContext(ctx, "store: pending index entry without a record", "id", id)
			continue
		}
		sess, err := decode(id, []byte(raw), act)
		if err != nil {
			return nil, 0, err
		}
		if sess.PendingSince.IsZero() {
			since, err := strconv.ParseInt(score, 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("pending score of session %s: %w", id, err)
			}
			sess.PendingSince = time.UnixMilli(since)
		}
		out = append(out, sess)
	}
	return out, int(total), nil
}
