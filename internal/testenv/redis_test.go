package testenv_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// Every acknowledged write to a durable redis-server survives a crash and a restart (Kill, then Restart; and Restart
// alone), on the same address, with the same clients.
func TestRedisRestartKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	ctx := context.Background()
	r, err := testenv.StartRedisWith(ctx, testenv.RedisOptions{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	rdb := r.Client(t)
	const n = 500
	write := func(round int) {
		t.Helper()
		for i := range n {
			if err := rdb.Set(ctx, fmt.Sprintf("k%d", i), fmt.Sprintf("%d-%d", round, i), 0).Err(); err != nil {
				t.Fatalf("round %d, write %d: %v", round, i, err)
			}
		}
	}
	check := func(round int) {
		t.Helper()
		for i := range n {
			got, err := rdb.Get(ctx, fmt.Sprintf("k%d", i)).Result()
			if err != nil {
				t.Fatalf("round %d, read %d: %v", round, i, err)
			}
			if want := fmt.Sprintf("%d-%d", round, i); got != want {
				t.Fatalf("round %d: k%d = %q, want %q", round, i, got, want)
			}
		}
	}
	addr := r.Addr

	write(1)
	r.Kill()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("redis answers after Kill")
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	check(1)

	write(2)
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	check(2)
	if r.Addr != addr {
		t.Fatalf("restarted on %s, was %s", r.Addr, addr)
	}
}
