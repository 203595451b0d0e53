package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// measureSweep sweeps f's sessions twice: the first sweep finds the idle ones, the second (a
// minute later in the sweep's clock) nothing left to do.
func measureSweep(ctx context.Context, e *env, f *fixture, o options) ([]sample, error) {
	now, clk, ids, idle := f.now, f.clk, f.ids, f.idle
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster := &scaleOnly{latency: o.scaleLatency}
	svc := session.NewService(cluster, f.st, session.Options{Now: clk.Now, Logger: log})

	// one code-server stand-in per idle workspace
	routes := map[string]string{}
	var probes atomic.Int64
	var servers []*httptest.Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for i, id := range ids[:idle] {
		beat := now.Add(-time.Hour) // long before its recorded activity: idle
		if i < o.active {
			beat = now.Add(-30 * time.Second) // an open tab
		}
		body := fmt.Sprintf(`{"status":"expired","lastHeartbeat":%d}`, beat.UnixMilli())
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			probes.Add(1)
			if r.URL.RequestURI() != "/healthz" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}))
		servers = append(servers, srv)
		routes[fmt.Sprintf("vs-code-%s.%s.svc.cluster.local:%d", id, namespace, port)] = srv.Listener.Addr().String()
	}
	var d net.Dialer
	prober, err := sweep.NewHTTPProber(sweep.ProbeOptions{Namespace: namespace, Port: port,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			to, ok := routes[addr]
			if !ok {
				return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
			}
			return d.DialContext(ctx, network, to)
		}})
	if err != nil {
		return nil, err
	}
	sw := sweep.New(sweep.Deps{Sessions: svc, Store: f.st, Prober: prober, Now: clk.Now, Logger: log},
		sweep.Options{Concurrency: o.concurrency, Namespace: namespace, Port: port})
	if err := sw.Err(); err != nil {
		return nil, err
	}

	var out []sample
	for _, name := range []string{"sweep (first)", "sweep (next minute)"} {
		probes.Store(0)
		cluster.scales.Store(0)
		e.trips.Reset()
		cpu, t0 := processCPU(), time.Now()
		rep, err := sw.Run(ctx)
		took, used := time.Since(t0), processCPU()-cpu
		if err != nil {
			return nil, fmt.Errorf("sweep over %d sessions: %w", len(ids), err)
		}
		if rep.Skipped || rep.Errors > 0 || rep.ProbeErrors > 0 {
			return nil, fmt.Errorf("sweep over %d sessions: unexpected report %+v", len(ids), rep)
		}
		if want := idle - min(o.active, idle); name == "sweep (first)" && rep.Slept != want {
			return nil, fmt.Errorf("first sweep slept %d, want %d", rep.Slept, want)
		}
		out = append(out, sample{op: name, requests: 1, wall: took, trips: e.trips.Trips(), cmds: e.trips.Commands(), cpu: used,
			detail: fmt.Sprintf("%d candidates, %d probes, %d slept, %d kept active, %d scale calls",
				rep.Candidates, probes.Load(), rep.Slept, rep.KeptActive, cluster.scales.Load())})
		clk.Add(time.Minute)
	}
	return out, nil
}

// scaleOnly is the cluster stand-in: every workspace exists and is ready; Scale counts (and
// optionally takes latency). The sweep needs nothing else from the cluster here.
type scaleOnly struct {
	latency time.Duration
	scales  atomic.Int64
}

var _ session.Cluster = (*scaleOnly)(nil)

func (c *scaleOnly) Apply(context.Context, session.Workspace) error { return nil }

func (c *scaleOnly) Scale(ctx context.Context, _ string, _ int32) error {
	c.scales.Add(1)
	if c.latency > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.latency):
		}
	}
	return nil
}

func (c *scaleOnly) Observe(_ context.Context, id string) (*session.Observed, error) {
	return &session.Observed{ID: id, Kinds: slices.Clone(session.WorkspaceKinds),
		Complete: true, Ready: true, DesiredReplicas: 1, ReadyReplicas: 1, PVCPhase: "Bound"}, nil
}

func (c *scaleOnly) Route(context.Context, session.Workspace) error { return nil }

func (c *scaleOnly) Readiness(ctx context.Context, id string) (*session.Observed, error) {
	return c.Observe(ctx, id)
}

func (c *scaleOnly) ObserveAll(context.Context) ([]*session.Observed, error) { return nil, nil }

func (c *scaleOnly) Password(context.Context, string) (string, error) { return "", nil }

func (c *scaleOnly) StartBackup(_ context.Context, id string, _ int) (*session.Backup, error) {
	return &session.Backup{Phase: session.BackupSucceeded, Location: "pvc://bench/" + id + ".zip"}, nil
}

func (c *scaleOnly) BackupStatus(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	return c.StartBackup(ctx, id, attempt)
}

func (c *scaleOnly) DeleteWorkspace(context.Context, string, bool) error { return nil }

// The sweep's benchmark makes no backups and restores nothing.
func (c *scaleOnly) StartRestore(context.Context, string, int, string) (*session.Backup, error) {
	return nil, session.Unimplemented("the sweep benchmark restores nothing")
}

func (c *scaleOnly) RestoreStatus(context.Context, string, int) (*session.Backup, error) {
	return &session.Backup{Phase: session.BackupMissing}, nil
}

func (c *scaleOnly) CheckArchive(context.Context, string) (*session.Archive, error) {
	return nil, session.Unimplemented("the sweep benchmark restores nothing")
}

func (c *scaleOnly) RemoveArchives(context.Context, string, []string) (*session.Backup, error) {
	return &session.Backup{Phase: session.BackupSucceeded}, nil
}
