package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/ratelimit"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// BenchmarkReads measures the two hot read routes end to end over real HTTP, as deployed: the
// whole middleware chain (the access log at info, the limiter on Redis), the session core and
// the store on a real redis-server holding 1,000 running sessions (90 users with 10 each, one
// with 100). It reports Redis round trips per request and the latency percentiles at the
// parallelism given by -cpu × 5 callers (-cpu 2: 10):
//
//	go test ./internal/api -run '^$' -bench Reads -cpu 2
func BenchmarkReads(b *testing.B) {
	if testing.Short() {
		b.Skip("starts redis-server")
	}
	f := newReadBench(b)
	get := func(b *testing.B, path func(i int) string) {
		f.trips.Reset()
		if err := f.rdb.ConfigResetStat(b.Context()).Err(); err != nil {
			b.Fatal(err)
		}
		redisCPU, cpu := f.redisCPU(b), processCPU()
		var n atomic.Int64
		var mu sync.Mutex
		var lat []time.Duration
		b.SetParallelism(5)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				i := int(n.Add(1))
				t0 := time.Now()
				f.get(b, path(i))
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		b.StopTimer()
		ops := float64(n.Load())
		b.ReportMetric(float64((processCPU()-cpu).Microseconds())/ops, "cpu-µs/op")
		b.ReportMetric(float64((f.redisCPU(b)-redisCPU).Microseconds())/ops, "redis-cpu-µs/op")
		f.logCommands(b)
		slices.Sort(lat)
		pct := func(p int) float64 { return float64(lat[(len(lat)-1)*p/100].Microseconds()) / 1000 }
		b.ReportMetric(float64(f.trips.Trips())/ops, "trips/op")
		b.ReportMetric(pct(50), "p50-ms")
		b.ReportMetric(pct(99), "p99-ms")
	}
	b.Run("status", func(b *testing.B) {
		get(b, func(i int) string { return "/session/" + f.ids[i%len(f.ids)] + "/status" })
	})
	b.Run("list-user-10", func(b *testing.B) {
		get(b, func(i int) string { return fmt.Sprintf("/sessions?user_id=user-%02d", i%90) })
	})
	b.Run("list-user-100", func(b *testing.B) {
		get(b, func(int) string { return "/sessions?user_id=user-big" })
	})
}

// BenchmarkReadsServe is BenchmarkReads without the network, one request at a time: the
// server's own time and allocations per request (Redis round trips included).
//
//	go test ./internal/api -run '^$' -bench ReadsServe -cpu 1 -benchmem
func BenchmarkReadsServe(b *testing.B) {
	if testing.Short() {
		b.Skip("starts redis-server")
	}
	f := newReadBench(b)
	h := f.srv.Config.Handler
	serve := func(b *testing.B, path func(i int) string) {
		b.ReportAllocs()
		i, cpu := 0, processCPU()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodGet, path(i), nil)
			req.Header.Set(HeaderAPIKey, benchKey)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("GET %s: %d", path(i), rec.Code)
			}
			i++
		}
		b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(i), "cpu-µs/op")
	}
	b.Run("status", func(b *testing.B) {
		serve(b, func(i int) string { return "/session/" + f.ids[i%len(f.ids)] + "/status" })
	})
	b.Run("list-user-10", func(b *testing.B) {
		serve(b, func(i int) string { return fmt.Sprintf("/sessions?user_id=user-%02d", i%90) })
	})
	b.Run("list-user-100", func(b *testing.B) {
		serve(b, func(int) string { return "/sessions?user_id=user-big" })
	})
}

// readBench is the API on a real redis-server with sessions in it.
type readBench struct {
	srv   *httptest.Server
	rdb   *redis.Client
	ids   []string
	trips *store.RoundTrips
}

const benchKey = "bench-key-3c5d0a8e91f2"

func newReadBench(b *testing.B) *readBench {
	b.Helper()
	ctx := context.Background()
	rs, err := testenv.StartRedis(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rs.Stop)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	b.Cleanup(func() { _ = rdb.Close() })
	trips := store.NewRoundTrips()
	rdb.AddHook(trips)
	quiet := slog.New(slog.DiscardHandler)
	st := store.New(rdb, "", store.Options{Logger: quiet})
	cluster := sessiontest.NewCluster(nil)
	cluster.SetAutoReady(true)
	svc := session.NewService(cluster, st, session.Options{Domain: "bench.example.test", Logger: quiet})

	users := make([]string, 0, 1000)
	for u := range 90 {
		for range 10 {
			users = append(users, fmt.Sprintf("user-%02d", u))
		}
	}
	for range 100 {
		users = append(users, "user-big")
	}
	f := &readBench{rdb: rdb, trips: trips, ids: make([]string, len(users))}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(users); i += 8 {
				s, err := svc.Create(ctx, session.CreateRequest{UserID: users[i]})
				if err == nil {
					s, err = svc.Get(ctx, s.ID) // drives it to running
				}
				if err != nil {
					b.Errorf("seeding: %v", err)
					return
				}
				if s.State != session.StateRunning {
					b.Errorf("seeding: %s is %s", s.ID, s.State)
					return
				}
				f.ids[i] = s.ID
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	// The access log as deployed (JSON at info), written nowhere.
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	f.srv = httptest.NewServer(New(Deps{Manager: svc, Limiter: ratelimit.New(rdb, ""), LimitRidesReads: true, Logger: log},
		Options{APIKeys: []string{benchKey}, KeyLimit: 1 << 30}))
	b.Cleanup(f.srv.Close)
	f.srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	return f
}

func (f *readBench) get(b *testing.B, path string) {
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set(HeaderAPIKey, benchKey)
	res, err := f.srv.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d", path, res.StatusCode)
	}
}

// processCPU is the CPU time this process (client and server alike) has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the CPU time redis-server has used.
func (f *readBench) redisCPU(b *testing.B) time.Duration {
	info, err := f.rdb.Info(b.Context(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			n, _ := strconv.ParseFloat(v, 64)
			total += n
		}
	}
	return time.Duration(total * float64(time.Second))
}

// logCommands logs the commands Redis ran since the last CONFIG RESETSTAT (-v shows them).
func (f *readBench) logCommands(b *testing.B) {
	info, err := f.rdb.Info(b.Context(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "cmdstat_") && !strings.HasPrefix(line, "cmdstat_config") &&
			!strings.HasPrefix(line, "cmdstat_info") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	b.Logf("redis commands over %d requests:\n%s", b.N, strings.Join(lines, "\n"))
}
