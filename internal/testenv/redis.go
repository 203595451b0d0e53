package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server on 127.0.0.1, started for one test package.
type Redis struct {
	Addr string
	cmd  *exec.Cmd
	dir  string
}

// StartRedis starts redis-server (Debian's package: apt-get install redis-server) on a free
// loopback port, without persistence.
func StartRedis(ctx context.Context) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (apt-get install -y redis-server): %w", err)
	}
	dir, err := os.MkdirTemp("", "hyperbola-redis-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	srv := server{what: "redis-server", bin: bin, dir: dir, log: "redis.log", tries: 5, patience: 10 * time.Second,
		args: func(port string) []string {
			return []string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
				"--dir", dir, "--protected-mode", "yes", "--maxclients", "10000"}
		},
		ready: func(addr string) func() error {
			return func() error {
				rdb := redis.NewClient(&redis.Options{Addr: addr})
				defer func() { _ = rdb.Close() }()
				return rdb.Ping(ctx).Err()
			}
		},
	}
	addr, cmd, err := srv.start(ctx)
	if err != nil {
		return nil, err
	}
	return &Redis{Addr: addr, cmd: cmd, dir: dir}, nil
}

// Stop stops the server and removes its directory.
func (r *Redis) Stop() {
	stopChild(r.cmd, 5*time.Second)
	_ = os.RemoveAll(r.dir)
}

// Client returns a client for the server, closed when t ends.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Redis returns a client for the package's redis-server and a key prefix unique to t, so
// tests never see each other's keys (and may run in parallel).
func (e *Env) RedisFor(t testing.TB) (*redis.Client, string) {
	t.Helper()
	need(t, e, "redis-server", e != nil && e.Redis != nil)
	return e.Redis.Client(t), UniqueName("t") + ":"
}
