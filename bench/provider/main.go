// Command provider measures the wall time of `terraform apply` and `terraform destroy` of 1,
// 10 and 50 hyperbola_workspace resources against the local stack, beside the same work done
// through the API directly with internal/client (create, wait until running; delete, wait
// until deleted with its backup).
//
// It starts its own local parts (cluster, redis-server), serves the API in process on
// 127.0.0.1, builds the provider and runs the machine's terraform with a CLI configuration
// of dev_overrides + filesystem_mirror, so nothing is downloaded. Not part of `make test`:
//
//	go run ./bench/provider [-sizes 1,10,50] [-parallelism 10] [-paths terraform-endpoint,terraform-direct,client]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/client"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

const (
	providerAddr = "registry.terraform.io/hyperbola-in/hyperbola"
	apiKey       = "bench-key"
)

type options struct {
	sizes       []int
	parallelism int
	paths       []string
	keep        bool
}

func main() {
	var sizes, paths string
	var o options
	flag.StringVar(&sizes, "sizes", "1,10,50", "workspace counts to measure")
	flag.IntVar(&o.parallelism, "parallelism", 10, "concurrent operations (terraform -parallelism, and the client's workers)")
	flag.StringVar(&paths, "paths", "terraform-endpoint,terraform-direct,client", "what to measure")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fatal(fmt.Errorf("-sizes: %q is not a positive number", s))
		}
		o.sizes = append(o.sizes, n)
	}
	o.paths = strings.Split(paths, ",")
	if err := run(context.Background(), o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/provider:", err)
	os.Exit(1)
}

// result is one measured row.
type result struct {
	path             string
	n                int
	apply, destroy   time.Duration
	applyN, destroyN int // workspaces seen running after apply, deleted after destroy
}

type bench struct {
	opts      options
	work      string
	tfBin     string
	cliConfig string
	kubecfg   string
	redisURL  string
	ns        string
	prefix    string
	endpoint  string
	svc       *session.Service
	log       *slog.Logger
}

func run(ctx context.Context, o options) error {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		return fmt.Errorf("terraform is not on PATH: %w", err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "hyperbola-bench-provider-")
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}
	b := &bench{opts: o, work: work, tfBin: tf, log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	step("building the provider")
	if err := b.buildProvider(ctx, root); err != nil {
		return err
	}

	step("starting the local cluster and redis-server")
	nodes := 1
	for _, n := range o.sizes {
		nodes = max(nodes, (n+o.parallelism)/80+1) // 110 pods a node: workspaces plus backup Jobs
	}
	env, err := testenv.Start(ctx, testenv.Options{Cluster: true, Redis: true, Nodes: nodes})
	if err != nil {
		return err
	}
	defer env.Close()
	b.kubecfg, b.redisURL = env.Kube.Kubeconfig, "redis://"+env.Redis.Addr+"/0"
	b.ns, b.prefix = testenv.UniqueName("bench-provider"), testenv.UniqueName("bench")+":"
	if err := env.Kube.CreateNamespace(ctx, b.ns); err != nil {
		return err
	}
	if err := env.Kube.CreateBackupPVC(ctx, b.ns, "hyperbola-backups"); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(env.Redis.Addr)
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		v, ok := map[string]string{
			"KUBECONFIG": b.kubecfg, "REDIS_HOST": host, "REDIS_PORT": port, "HYPERBOLA_REDIS_PREFIX": b.prefix,
			"HYPERBOLA_NAMESPACE": b.ns, "HYPERBOLA_DOMAIN": "bench.hyperbola.local",
		}[k]
		return v, ok
	})
	if err != nil {
		return err
	}
	st, err := stack.New(ctx, cfg, stack.Parts{Logger: b.log})
	if err != nil {
		return err
	}
	defer st.Close()
	b.svc = st.Service

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: api.New(api.Deps{Manager: st.Service, Health: st, Logger: b.log}, api.Options{APIKeys: []string{apiKey}}),
		ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	b.endpoint = "http://" + ln.Addr().String()

	var results []result
	for _, n := range o.sizes {
		for _, p := range o.paths {
			step(fmt.Sprintf("%s: %d workspace(s)", p, n))
			var r result
			var err error
			switch strings.TrimSpace(p) {
			case "terraform-endpoint":
				r, err = b.terraform(ctx, "endpoint", n)
			case "terraform-direct":
				r, err = b.terraform(ctx, "direct", n)
			case "client":
				r, err = b.client(ctx, n)
			default:
				return fmt.Errorf("unknown path %q", p)
			}
			if err != nil {
				return fmt.Errorf("%s, %d workspaces: %w", p, n, err)
			}
			results = append(results, r)
		}
	}
	b.print(results)
	return nil
}

func step(s string) { fmt.Fprintf(os.Stderr, "[bench/provider] %s\n", s) }

// buildProvider builds the provider binary and the CLI configuration that uses it offline.
func (b *bench) buildProvider(ctx context.Context, root string) error {
	bin := filepath.Join(b.work, "bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "terraform-provider-hyperbola"), ".")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build of the provider: %w", err)
	}
	mirror := filepath.Join(b.work, "mirror")
	pkg := filepath.Join(mirror, providerAddr, "0.0.1", runtime.GOOS+"_"+runtime.GOARCH)
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(bin, "terraform-provider-hyperbola"))
	if err != nil {
		return fmt.Errorf("reading the provider: %w", err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "terraform-provider-hyperbola_v0.0.1"), data, 0o755); err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	b.cliConfig = filepath.Join(b.work, "terraformrc")
	rc := fmt.Sprintf(`provider_installation {
  dev_overrides {
    "hyperbola-in/hyperbola" = %q
  }
  filesystem_mirror {
    path    = %q
    include = [%q]
  }
}
disable_checkpoint = true
`, bin, mirror, providerAddr)
	if err := os.WriteFile(b.cliConfig, []byte(rc), 0o644); err != nil {
		return fmt.Errorf("CLI config: %w", err)
	}
	return nil
}

// terraform applies and destroys n workspaces with the provider in mode.
func (b *bench) terraform(ctx context.Context, mode string, n int) (result, error) {
	r := result{path: "terraform apply/destroy (" + mode + " mode)", n: n}
	dir := filepath.Join(b.work, fmt.Sprintf("tf-%s-%d", mode, n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, fmt.Errorf("dir: %w", err)
	}
	provider := fmt.Sprintf("provider \"hyperbola\" {\n  endpoint = %q\n  api_key  = %q\n}\n", b.endpoint, apiKey)
	if mode == "direct" {
		provider = fmt.Sprintf("provider \"hyperbola\" {\n  kubeconfig   = %q\n  redis_url    = %q\n  redis_prefix = %q\n  namespace    = %q\n  domain       = \"bench.hyperbola.local\"\n}\n",
			b.kubecfg, b.redisURL, b.prefix, b.ns)
	}
	main := `terraform {
  required_providers {
    hyperbola = { source = "hyperbola-in/hyperbola" }
  }
}
` + provider + fmt.Sprintf(`
resource "hyperbola_workspace" "w" {
  count   = %d
  user_id = "bench-%s-%d-${count.index}@example.com"
}
`, n, mode, n)
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(main), 0o644); err != nil {
		return r, fmt.Errorf("main.tf: %w", err)
	}
	tf := func(args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, b.tfBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+b.cliConfig, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("terraform %s: %w\n%s", args[0], err, tail(out, 40))
		}
		return time.Since(start), nil
	}
	if _, err := tf("init", "-input=false", "-no-color"); err != nil {
		return r, err
	}
	par := "-parallelism=" + strconv.Itoa(b.opts.parallelism)
	var err error
	if r.apply, err = tf("apply", "-auto-approve", "-input=false", "-no-color", par); err != nil {
		return r, err
	}
	prefix := fmt.Sprintf("bench-%s-%d-", mode, n)
	r.applyN = b.count(ctx, prefix, session.StateRunning)
	if r.destroy, err = tf("destroy", "-auto-approve", "-input=false", "-no-color", par); err != nil {
		return r, err
	}
	r.destroyN = b.count(ctx, prefix, session.StateDeleted)
	return r, nil
}

// client does the same work through the API with internal/client: n creates then waits until
// running, n deletes then waits until deleted, with the same number of workers.
func (b *bench) client(ctx context.Context, n int) (result, error) {
	r := result{path: "API via internal/client", n: n}
	c, err := client.New(b.endpoint, apiKey)
	if err != nil {
		return r, err
	}
	ids := make([]string, n)
	start := time.Now()
	if err := b.each(n, func(i int) error {
		s, err := c.Create(ctx, session.CreateRequest{UserID: fmt.Sprintf("bench-client-%d-%d@example.com", n, i)})
		if err != nil {
			return err
		}
		ids[i] = s.ID
		return waitFor(ctx, c, s.ID, session.StateRunning)
	}); err != nil {
		return r, err
	}
	r.apply = time.Since(start)
	r.applyN = n
	start = time.Now()
	if err := b.each(n, func(i int) error {
		if _, err := c.Delete(ctx, ids[i], session.DeleteOptions{}); err != nil {
			return err
		}
		return waitFor(ctx, c, ids[i], session.StateDeleted)
	}); err != nil {
		return r, err
	}
	r.destroy = time.Since(start)
	r.destroyN = n
	return r, nil
}

// each runs fn(0..n-1) on the bench's number of workers.
func (b *bench) each(n int, fn func(i int) error) error {
	work := make(chan int)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range min(b.opts.parallelism, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// waitFor polls like the provider does (250ms, growing to 2s).
func waitFor(ctx context.Context, c *client.Client, id string, want session.State) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	delay := 250 * time.Millisecond
	for {
		s, err := c.Get(ctx, id)
		if err != nil {
			return err
		}
		if s.State == want {
			return nil
		}
		if s.State == session.StateFailed {
			return fmt.Errorf("workspace %s failed: %s", id, s.Reason)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("workspace %s is %s, not %s: %w", id, s.State, want, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*3/2, 2*time.Second)
	}
}

// count reports the workspaces of users starting with prefix in state st.
func (b *bench) count(ctx context.Context, prefix string, st session.State) int {
	n := 0
	opts := session.ListOptions{State: st, Limit: 1000}
	for {
		page, err := b.svc.List(ctx, opts)
		if err != nil {
			return -1
		}
		for _, s := range page.Sessions {
			if strings.HasPrefix(s.UserID, prefix) {
				n++
			}
		}
		if page.NextCursor == "" {
			return n
		}
		opts.Cursor = page.NextCursor
	}
}

func (b *bench) print(rs []result) {
	fmt.Printf("\nhyperbola_workspace: wall time of apply (create, wait until running) and destroy (backup, delete, wait until deleted)\n")
	fmt.Printf("local cluster (kwok) + redis-server, %d cores, parallelism %d, terraform %s\n\n", runtime.NumCPU(), b.opts.parallelism, tfVersion(b.tfBin))
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "workspaces\tpath\tapply\tdestroy\tper workspace (apply/destroy)\tcheck\t")
	for _, r := range rs {
		check := "ok"
		if r.applyN != r.n || r.destroyN != r.n {
			check = fmt.Sprintf("running %d, deleted %d", r.applyN, r.destroyN)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s / %s\t%s\t\n", r.n, r.path, r.apply.Round(10*time.Millisecond), r.destroy.Round(10*time.Millisecond),
			(r.apply / time.Duration(r.n)).Round(time.Millisecond), (r.destroy / time.Duration(r.n)).Round(time.Millisecond), check)
	}
	_ = w.Flush()
}

func tfVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimPrefix(line, "Terraform ")
}

func tail(b []byte, lines int) string {
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}
