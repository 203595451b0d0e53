package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// usageScript counts, in one round trip, a user's sessions that are not tombstones, the awake
// ones among them (creating, running, waking: session.State.Awake), and every awake session.
// It walks the user's index, which is as long as the user's sessions (tombstones included):
// the count limits keep that short.
//
// ARGV: prefix, user. Returns {user sessions, user awake, awake}.
var usageScript = redis.NewScript(`
local P = ARGV[1]
local awake = {'creating', 'running', 'waking'}
local n, up = 0, 0
for _, id in ipairs(redis.call('ZRANGE', P .. 'u:' .. ARGV[2], 0, -1)) do
  if not redis.call('ZSCORE', P .. 'state:deleted', id) then
    n = n + 1
    for _, st in ipairs(awake) do
      if redis.call('ZSCORE', P .. 'state:' .. st, id) then up = up + 1 break end
    end
  end
end
local all = 0
for _, st in ipairs(awake) do all = all + redis.call('ZCARD', P .. 'state:' .. st) end
return {n, up, all}
`)

var _ session.Counter = (*Store)(nil)

// Usage counts what the session core's count limits are checked against (session.Counter).
// The core runs it and the write it guards under one lock, so the counts hold until then.
func (s *Store) Usage(ctx context.Context, user string) (session.Usage, error) {
	v, err := usageScript.Run(ctx, s.rdb, nil, s.prefix, user).Int64Slice()
	if err != nil {
		return session.Usage{}, unavailable(fmt.Errorf("count sessions: %w", err))
	}
	if len(v) != 3 {
		return session.Usage{}, fmt.Errorf("count sessions: unexpected reply of %d items", len(v))
	}
	return session.Usage{UserSessions: int(v[0]), UserAwake: int(v[1]), Awake: int(v[2])}, nil
}
