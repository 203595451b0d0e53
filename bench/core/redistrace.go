package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisTrace prints every command of Hyperbola's Redis client (BENCH_TRACE=1), as the REST
// transport's wrapper (countRequests) prints its Kubernetes requests: the time a command was
// sent, its name and first key, and how long it took.
type redisTrace struct{ w io.Writer }

var _ redis.Hook = redisTrace{}

func (redisTrace) DialHook(next redis.DialHook) redis.DialHook { return next }

func (t redisTrace) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		fmt.Fprintf(t.w, "trace %s redis %s took %s\n", start.Format(traceTime), cmdLine(cmd), time.Since(start))
		return err
	}
}

func (t redisTrace) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		line := ""
		for i, c := range cmds {
			if i > 0 {
				line += "; "
			}
			line += cmdLine(c)
		}
		fmt.Fprintf(t.w, "trace %s redis pipeline [%s] took %s\n", start.Format(traceTime), line, time.Since(start))
		return err
	}
}

// cmdLine is a command's name and its first argument (a key, or a script's sha).
func cmdLine(c redis.Cmder) string {
	args := c.Args()
	if len(args) > 1 {
		return fmt.Sprintf("%v %v", args[0], args[1])
	}
	return c.Name()
}
