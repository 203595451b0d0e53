package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server on 127.0.0.1, started for one test package.
//
// A durable one (RedisOptions.Durable) keeps its data as Memorystore's standard tier keeps it
// through a failover: an append-only file written (and fsynced) before every write is
// acknowledged, so Restart, even after Kill, loses no acknowledged write. Without it a
// restarted server starts empty.
type Redis struct {
	Addr string

	durable bool

	mu     sync.Mutex
	cmd    *exec.Cmd // nil after Kill or Stop
	dir    string
	port   string
	starts int
}

// RedisOptions say how StartRedisWith runs redis-server.
type RedisOptions struct {
	// Durable writes every write to an append-only file and fsyncs it before answering
	// (--appendonly yes --appendfsync always), so Restart keeps the data. It costs: the store's
	// tests took about half as long again with it (12-14 s instead of 8-9 s on 2 cores).
	Durable bool
}

// StartRedis starts redis-server (Debian's package: apt-get install redis-server) on a free
// loopback port, without persistence.
func StartRedis(ctx context.Context) (*Redis, error) {
	return StartRedisWith(ctx, RedisOptions{})
}

// StartRedisWith starts redis-server on a free loopback port as opts says, in a directory of
// its own.
func StartRedisWith(ctx context.Context, opts RedisOptions) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (apt-get install -y redis-server): %w", err)
	}
	dir, err := os.MkdirTemp("", "hyperbola-redis-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	r := &Redis{dir: dir, durable: opts.Durable}
	srv := r.server(ctx, bin)
	addr, cmd, err := srv.start(ctx)
	if err != nil {
		return nil, err
	}
	r.Addr, r.cmd, r.starts = addr, cmd, 1
	_, r.port, _ = net.SplitHostPort(addr)
	return r, nil
}

// server describes redis-server as this Redis runs it.
func (r *Redis) server(ctx context.Context, bin string) server {
	return server{what: "redis-server", bin: bin, dir: r.dir, log: "redis.log", tries: 5, patience: 10 * time.Second,
		args: func(port string) []string {
			persist := []string{"--appendonly", "no"}
			if r.durable {
				persist = []string{"--appendonly", "yes", "--appendfsync", "always"}
			}
			args := []string{"--bind", "127.0.0.1", "--port", port, "--save", ""}
			args = append(args, persist...)
			return append(args, "--dir", r.dir, "--protected-mode", "yes", "--maxclients", "10000")
		},
		ready: func(addr string) func() error {
			return func() error {
				rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
				defer func() { _ = rdb.Close() }()
				return rdb.Ping(ctx).Err()
			}
		},
	}
}

// Restart crashes the server (SIGKILL, as a failed primary goes) and starts it again on the
// same port from the same directory: a durable one comes back with every acknowledged write.
// It also starts a server that Kill stopped. Clients reconnect by themselves.
func (r *Redis) Restart(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kill()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("redis-server not found: %w", err)
	}
	srv := r.server(ctx, bin)
	r.starts++
	logPath := filepath.Join(r.dir, "redis-"+strconv.Itoa(r.starts)+".log")
	// the port was just let go: a bind can fail for a moment, so try for a while
	deadline := time.Now().Add(srv.patience)
	var lastErr error
	for time.Now().Before(deadline) {
		cmd, err := startChild(bin, srv.args(r.port), logPath)
		if err != nil {
			return err
		}
		if lastErr = waitFor(ctx, "redis-server", srv.patience, cmd, srv.ready(r.Addr)); lastErr == nil {
			r.cmd = cmd
			return nil
		}
		stopChild(cmd, 2*time.Second)
		if ctx.Err() != nil {
			break
		}
	}
	log, _ := os.ReadFile(logPath)
	return fmt.Errorf("restarting redis-server on %s: %w\n%s", r.Addr, lastErr, log)
}

// Kill stops the server with SIGKILL and does not start it again (Restart does): clients get
// connection errors until then.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kill()
}

func (r *Redis) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Stop stops the server and removes its directory.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	stopChild(r.cmd, 5*time.Second)
	r.cmd = nil
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
