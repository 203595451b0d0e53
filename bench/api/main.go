// Command api is a load generator for the HTTP API. It prints two tables of p50/p99/max latency
// and throughput: create, status and list at several concurrency levels, on the sessions it
// creates; then reads over many seeded sessions (1,000 by default, running, ten per user):
// GET /session/{id}/status at concurrency 1, 10 and 100 and GET /sessions?user_id= (list by
// user) at concurrency 10, the measure of the read goals (status p99 ≤ 10 ms and list by
// user p99 ≤ 15 ms, both at concurrency 10).
//
//	go run ./bench/api                       # starts a local cluster + redis-server + the API
//	go run ./bench/api -endpoint URL -key K   # targets a running API (e.g. make run)
//
// Every create makes a real workspace (six objects applied to the cluster); the local run
// gives the cluster enough fake nodes for all of them. A status call drives the session's
// pending step (the first one after a create observes the pod), so status latency includes
// that work for sessions not yet seen running. Not part of make test.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

func main() {
	endpoint := flag.String("endpoint", "", "API to load (default: start a local cluster, redis-server and API)")
	key := flag.String("key", os.Getenv("API_KEY"), "API key for -endpoint")
	levels := flag.String("concurrency", "1,10,100", "concurrency levels")
	minN := flag.Int("n", 50, "requests per operation and level (at least 2x the concurrency)")
	seed := flag.Int("seed", -1, "sessions to seed for the read table (-1: 1000 locally, none with -endpoint)")
	users := flag.Int("users", 100, "users the seeded sessions belong to")
	reads := flag.Int("reads", 2000, "requests per read level (at least 10x the concurrency)")
	seedState := flag.String("seed-state", "running", "state of the seeded sessions: running (real pods) or sleeping (no pods)")
	flag.Parse()
	// The API runs in this process: give its collector what infra gives session-api
	// (infra/modules/control-plane: GOGC=400, GOMEMLIMIT=384MiB), unless the environment says.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(384 << 20)
	}
	if *seed < 0 {
		*seed = 0
		if *endpoint == "" {
			*seed = 1000
		}
	}
	rc := readConfig{sessions: *seed, users: max(*users, 1), requests: *reads, state: *seedState}
	if err := run(*endpoint, *key, *levels, *minN, rc); err != nil {
		fmt.Fprintln(os.Stderr, "bench/api:", err)
		os.Exit(1)
	}
}

func run(endpoint, key, levelList string, minN int, rc readConfig) error {
	if rc.state != "running" && rc.state != "sleeping" {
		return fmt.Errorf("-seed-state %q: want running or sleeping", rc.state)
	}
	var conc []int
	for _, p := range strings.Split(levelList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return fmt.Errorf("-concurrency %q: want numbers such as 1,10,100", levelList)
		}
		conc = append(conc, n)
	}
	requests := func(c int) int { return max(minN, 2*c) }
	totalCreates := 0
	for _, c := range conc {
		totalCreates += requests(c)
	}
	pods := totalCreates
	if rc.state == "running" {
		pods += rc.sessions
	}

	ctx := context.Background()
	where := endpoint
	if endpoint == "" {
		base, k, stop, err := startLocal(ctx, pods)
		if err != nil {
			return err
		}
		defer stop()
		endpoint, key, where = base, k, "local (cluster + redis-server + API on "+base+")"
	}
	if key == "" {
		return fmt.Errorf("-key (or API_KEY) is required with -endpoint")
	}
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute,
	}}
	b := &bench{base: strings.TrimRight(endpoint, "/"), key: key, hc: hc, run: strconv.FormatInt(time.Now().Unix(), 36)}

	gogc := debug.SetGCPercent(100) // read it (SetGCPercent answers the old value), then put it back
	debug.SetGCPercent(gogc)
	fmt.Printf("Hyperbola API load: %s; GOGC %d, GOMEMLIMIT %d MiB\n", where, gogc, debug.SetMemoryLimit(-1)>>20)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tconcurrency\trequests\tok\terrors\tp50\tp99\tmax\treq/s\t")
	for _, c := range conc {
		n := requests(c)
		for _, op := range []string{"create", "status", "list"} {
			row(tw, op, c, n, b.load(ctx, c, n, func(ctx context.Context) error { return b.one(ctx, op) }))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rc.sessions == 0 {
		return nil
	}
	return b.reads(ctx, rc)
}

// row prints one operation's result and says on stderr how it went.
func row(tw io.Writer, op string, c, n int, res *result) {
	fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%.1f\t\n", op, c, n, res.ok, res.errors,
		ms(res.pct(50)), ms(res.pct(99)), ms(res.max()), float64(n)/res.wall.Seconds())
	fmt.Fprintf(os.Stderr, "  %s at concurrency %d: %d/%d ok, p50 %s\n", op, c, res.ok, n, ms(res.pct(50)))
	if res.firstErr != "" {
		fmt.Fprintf(os.Stderr, "  %s c=%d: first error: %s\n", op, c, res.firstErr)
	}
}

type bench struct {
	base, key, run string
	hc             *http.Client
	mu             sync.Mutex
	ids            []string
	seq            atomic.Int64
}

type result struct {
	lat      []time.Duration
	ok       int
	errors   int
	wall     time.Duration
	firstErr string
}

func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat))*p/100+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

func (r *result) max() time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[len(r.lat)-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

// load runs n requests (calls of fn) with c workers.
func (b *bench) load(ctx context.Context, c, n int, fn func(context.Context) error) *result {
	var next atomic.Int64
	lat := make([]time.Duration, n)
	okv := make([]bool, n)
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				err := fn(ctx)
				lat[i] = time.Since(t0)
				okv[i] = err == nil
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	res := &result{wall: time.Since(start)}
	for i := range n {
		if okv[i] {
			res.ok++
			res.lat = append(res.lat, lat[i])
		} else {
			res.errors++
		}
	}
	slices.Sort(res.lat)
	if v, ok := firstErr.Load().(string); ok {
		res.firstErr = v
	}
	return res
}

func (b *bench) one(ctx context.Context, op string) error {
	switch op {
	case "create":
		body := fmt.Sprintf(`{"user_id":"bench-%s-%d@example.com"}`, b.run, b.seq.Add(1))
		var s struct {
			UUID string `json:"uuid"`
		}
		if err := b.do(ctx, "POST", "/session/create", body, http.StatusCreated, &s); err != nil {
			return err
		}
		b.mu.Lock()
		b.ids = append(b.ids, s.UUID)
		b.mu.Unlock()
		return nil
	case "status":
		b.mu.Lock()
		if len(b.ids) == 0 {
			b.mu.Unlock()
			return fmt.Errorf("no session to ask for")
		}
		id := b.ids[rand.IntN(len(b.ids))]
		b.mu.Unlock()
		return b.do(ctx, "GET", "/session/"+id+"/status", "", http.StatusOK, nil)
	case "list":
		return b.do(ctx, "GET", "/sessions?limit=100", "", http.StatusOK, nil)
	}
	return fmt.Errorf("unknown op %q", op)
}

func (b *bench) do(ctx context.Context, method, path, body string, want int, out any) error {
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", b.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// startLocal starts a local cluster with enough fake nodes, a redis-server and the API on a
// loopback port, with rate limits high enough not to interfere.
func startLocal(ctx context.Context, workspaces int) (string, string, func(), error) {
	nodes := workspaces/100 + 1 // a fake node admits 110 pods
	fmt.Fprintf(os.Stderr, "starting a local cluster (%d fake nodes) and redis-server...\n", nodes)
	env, err := testenv.Start(ctx, testenv.Options{Cluster: true, Redis: true, Nodes: nodes})
	if err != nil {
		return "", "", nil, err
	}
	stops := []func(){env.Close}
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	fail := func(err error) (string, string, func(), error) { stop(); return "", "", nil, err }
	ns := testenv.UniqueName("bench-api")
	if err := env.Kube.CreateNamespace(ctx, ns); err != nil {
		return fail(err)
	}
	if err := env.Kube.CreateBackupPVC(ctx, ns, "hyperbola-backups"); err != nil {
		return fail(err)
	}
	key := "bench-" + strconv.FormatInt(rand.Int64(), 36)
	cfg, err := config.FromLookup(func(name string) (string, bool) {
		v, ok := map[string]string{
			"HYPERBOLA_NAMESPACE": ns, "HYPERBOLA_DOMAIN": "bench.example.test", "API_KEY": key,
			"REDIS_HOST": strings.Split(env.Redis.Addr, ":")[0], "REDIS_PORT": strings.Split(env.Redis.Addr, ":")[1],
			"HYPERBOLA_CREATE_RATE_LIMIT": "1000000", "HYPERBOLA_API_RATE_LIMIT": "1000000",
		}[name]
		return v, ok
	})
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := stack.New(ctx, cfg, stack.Parts{Kube: env.Kube.Client, Logger: log})
	if err != nil {
		return fail(err)
	}
	stops = append(stops, func() { _ = st.Close() })
	h, err := st.Handlers(ctx) // the API as the functions serve it
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	hs := &http.Server{Handler: h.API, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	stops = append(stops, func() { _ = hs.Close() })
	return "http://" + ln.Addr().String(), key, stop, nil
}
