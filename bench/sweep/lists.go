package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/ratelimit"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

const apiKey = "bench-key-6f1e2d3c4b5a"

// apiServer is the API as deployed, on 127.0.0.1, over f's store.
type apiServer struct {
	srv *httptest.Server
	h   http.Handler
	hc  *http.Client
}

func newAPI(e *env, f *fixture, u *usageBench, o options) (*apiServer, error) {
	quiet := slog.New(slog.DiscardHandler)
	svc := session.NewService(&scaleOnly{}, f.st, session.Options{Logger: quiet})
	deps := api.Deps{Manager: svc, Limiter: ratelimit.New(e.rdb, ""),
		// The access log as deployed (JSON at info), written nowhere.
		Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if u != nil {
		deps.Usage = u.rec
	}
	h := api.New(deps, api.Options{APIKeys: []string{apiKey}, KeyLimit: 1 << 30})
	srv := httptest.NewServer(h)
	hc := srv.Client()
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	hc.Timeout = o.usageTimeout + time.Minute
	return &apiServer{srv: srv, h: h, hc: hc}, nil
}

func (a *apiServer) close() { a.srv.Close() }

// get asks path over HTTP and decodes the answer into out (nil: discards it).
func (a *apiServer) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.srv.URL+path, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set(api.HeaderAPIKey, apiKey)
	res, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", path, res.Status, b)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, res.Body)
	} else {
		err = json.NewDecoder(res.Body).Decode(out)
	}
	if err != nil {
		return fmt.Errorf("GET %s: reading the answer: %w", path, err)
	}
	return nil
}

// serve asks path of the handler in process (no network, no client): the server's own work.
func (a *apiServer) serve(path string) (*httptest.ResponseRecorder, error) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set(api.HeaderAPIKey, apiKey)
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("GET %s in process: %d: %s", path, rec.Code, rec.Body.Bytes())
	}
	return rec, nil
}

type listPage struct {
	Sessions   []json.RawMessage `json:"sessions"`
	Count      int               `json:"count"`
	NextCursor string            `json:"next_cursor"`
}

// measureLists walks the whole admin list page by page and asks the list of a user with 10
// and of one with 100 sessions.
func measureLists(ctx context.Context, e *env, a *apiServer, f *fixture, o options) ([]sample, error) {
	walk, err := measureWalk(ctx, e, a, len(f.ids), o)
	if err != nil {
		return nil, err
	}
	out := []sample{walk}
	for _, u := range []struct {
		op, user string
		want     int
	}{{"list user (10)", userOf(0, len(f.ids)), 10}, {"list user (100)", bigUser, 100}} {
		s, err := measureUser(ctx, e, a, u.op, u.user, u.want, o)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// measureWalk reads GET /sessions from the first page to the last, over HTTP, then again in
// process for the server's CPU.
func measureWalk(ctx context.Context, e *env, a *apiServer, n int, o options) (sample, error) {
	path := func(cursor string) string {
		p := fmt.Sprintf("/sessions?limit=%d", o.page)
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		return p
	}
	s := sample{op: fmt.Sprintf("list all (pages of %d)", o.page)}
	e.trips.Reset()
	seen, cursor := 0, ""
	t0 := time.Now()
	for {
		var p listPage
		t := time.Now()
		if err := a.get(ctx, path(cursor), &p); err != nil {
			return s, err
		}
		s.lat = append(s.lat, time.Since(t))
		seen += p.Count
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	s.wall, s.requests, s.trips, s.cmds = time.Since(t0), len(s.lat), e.trips.Trips(), e.trips.Commands()
	if seen != n {
		return s, fmt.Errorf("the list walk saw %d sessions, want %d", seen, n)
	}
	cpu, pages := processCPU(), 0
	for cursor = ""; ; pages++ {
		rec, err := a.serve(path(cursor))
		if err != nil {
			return s, err
		}
		if cursor = nextCursor(rec.Body.Bytes()); cursor == "" {
			break
		}
	}
	s.cpu = (processCPU() - cpu) * time.Duration(s.requests) / time.Duration(pages+1)
	s.detail = fmt.Sprintf("%d sessions", seen)
	return s, nil
}

// measureUser asks GET /sessions?user_id=user o.reads times from o.readers callers over
// HTTP, then o.reads times in process, one at a time, for the server's CPU.
func measureUser(ctx context.Context, e *env, a *apiServer, op, user string, want int, o options) (sample, error) {
	path := "/sessions?user_id=" + url.QueryEscape(user)
	var p listPage
	if err := a.get(ctx, path, &p); err != nil {
		return sample{}, err
	}
	if p.Count != want {
		return sample{}, fmt.Errorf("%s: %d sessions, want %d", path, p.Count, want)
	}
	s := sample{op: op, requests: o.reads}
	e.trips.Reset()
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	t0 := time.Now()
	for range o.readers {
		wg.Go(func() {
			var mine []time.Duration
			for next.Add(1) <= int64(o.reads) {
				t := time.Now()
				if err := a.get(ctx, path, nil); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			s.lat = append(s.lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	s.wall, s.trips, s.cmds = time.Since(t0), e.trips.Trips(), e.trips.Commands()
	if firstErr != nil {
		return s, firstErr
	}
	cpu := processCPU()
	for range o.reads {
		if _, err := a.serve(path); err != nil {
			return s, err
		}
	}
	s.cpu = processCPU() - cpu
	s.detail = fmt.Sprintf("%d sessions per answer, %d callers", want, o.readers)
	return s, nil
}

// nextCursor finds a page's next_cursor without decoding the page (its last member, as the
// server writes it), so the in-process pass spends no CPU of a client's.
func nextCursor(page []byte) string {
	const k = `"next_cursor":"`
	i := bytes.LastIndex(page, []byte(k))
	if i < 0 {
		return ""
	}
	rest := page[i+len(k):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}
