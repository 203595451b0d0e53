package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	var lastErr error
	for range 5 { // a port can be taken between FreePort and the bind: try another
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd, err := startChild(bin, []string{
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
			"--dir", dir, "--protected-mode", "yes", "--maxclients", "10000",
		}, filepath.Join(dir, "redis.log"))
		if err != nil {
			return nil, err
		}
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		lastErr = waitFor(ctx, "redis-server", 10*time.Second, cmd, func() error { return rdb.Ping(ctx).Err() })
		_ = rdb.Close()
		if lastErr == nil {
			return &Redis{Addr: addr, cmd: cmd, dir: dir}, nil
		}
		stopChild(cmd, time.Second)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("starting redis-server: %w\n%s", lastErr, log)
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
