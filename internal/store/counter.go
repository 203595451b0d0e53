package store

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// RoundTrips is a go-redis hook that counts round trips to Redis: one per command sent on its
// own, one per pipeline or transaction (however many commands it holds). Add it with
// rdb.AddHook(c); benchmarks print it. Script.Run counts as one round trip, or two the first
// time a script is not cached yet (EVALSHA, then EVAL). The commands go-redis sends to set up a
// new connection (HELLO, AUTH, SELECT, CLIENT ...) are not counted; Dials counts connections.
type RoundTrips struct {
	trips    atomic.Int64
	commands atomic.Int64
	dials    atomic.Int64
}

var _ redis.Hook = (*RoundTrips)(nil)

// NewRoundTrips returns a zeroed counter.
func NewRoundTrips() *RoundTrips { return &RoundTrips{} }

// Trips returns the round trips counted so far.
func (c *RoundTrips) Trips() int64 { return c.trips.Load() }

// Commands returns the commands counted so far (pipelined ones one by one).
func (c *RoundTrips) Commands() int64 { return c.commands.Load() }

// Dials returns the connections opened so far.
func (c *RoundTrips) Dials() int64 { return c.dials.Load() }

// Reset zeroes the counts.
func (c *RoundTrips) Reset() {
	c.trips.Store(0)
	c.commands.Store(0)
	c.dials.Store(0)
}

// setup reports whether cmd is one go-redis sends while setting up a connection.
func setup(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "auth", "select", "client", "readonly":
		return true
	}
	return false
}

// DialHook implements redis.Hook.
func (c *RoundTrips) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c.dials.Add(1)
		return next(ctx, network, addr)
	}
}

// ProcessHook implements redis.Hook.
func (c *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if setup(cmd) {
			return next(ctx, cmd)
		}
		c.trips.Add(1)
		c.commands.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n := 0
		for _, cmd := range cmds {
			if !setup(cmd) {
				n++
			}
		}
		if n > 0 {
			c.trips.Add(1)
			c.commands.Add(int64(n))
		}
		return next(ctx, cmds)
	}
}
