package api

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

type int64Counter = atomic.Int64

// metrics are one Server's: a registry of its own (never the global default one), and the
// counters the seed-compatible JSON reports.
type metrics struct {
	s       *Server
	reg     *prometheus.Registry
	handler http.Handler
	reqDur  *prometheus.HistogramVec
	phases  *prometheus.HistogramVec
	limited *prometheus.CounterVec
	reports *prometheus.CounterVec
	started time.Time

	requests, clientErrors, serverErrors, rateLimitedN int64Counter
	created, slept, woken, deleted, updated, touched   int64Counter
	counterNames                                       []string
	counterValues                                      []*int64Counter

	countSessions               func(ctx context.Context) (map[session.State]int, error)
	sessionsDesc                *prometheus.Desc
	stuckDesc, stuckSecondsDesc *prometheus.Desc
	countTimeout                time.Duration
	listPageLimit, listMaxPages int
}

// Phases observed by the lifecycle histogram.
var phaseNames = []string{"create_accepted", "create_to_running", "sleep", "wake_accepted", "wake_to_running", "update", "delete_accepted"}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		s: s, reg: prometheus.NewRegistry(), started: s.now(), countTimeout: 2 * time.Second,
		listPageLimit: session.MaxListLimit, listMaxPages: 100,
	}
	m.reqDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hyperbola_http_request_duration_seconds",
		Help: "HTTP request latency by route pattern and status code.",
		// 1 ms to ~33 s: a create applies six objects; a list or status is a Redis round trip.
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"route", "code"})
	m.phases = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hyperbola_lifecycle_phase_duration_seconds",
		Help: "Session lifecycle phases: create_accepted (request to 201), create_to_running and wake_to_running (as seen by the request that saw the pod ready), sleep, wake_accepted, update, delete_accepted (request to answer).",
		// 10 ms to ~5.5 min: pods take seconds to tens of seconds to become ready.
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
	}, []string{"phase"})
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hyperbola_rate_limited_total",
		Help: "Requests refused with 429, by limit (create_ip, api_key, probe_ip, auth_failed_ip, activity_session).",
	}, []string{"limit"})
	m.reports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hyperbola_activity_reports_total",
		Help: "Activity reports recorded (POST /session/{uuid}/activity), by kind: input, cpu and stay from the IDE extension, api from other clients.",
	}, []string{"kind"})
	for _, k := range activity.Kinds { // every kind shows up, even before its first report
		m.reports.WithLabelValues(k)
	}
	m.sessionsDesc = prometheus.NewDesc("hyperbola_sessions", "Sessions by state (read from the store at scrape time).", []string{"state"}, nil)
	m.stuckDesc = prometheus.NewDesc("hyperbola_sessions_stuck",
		"Sessions in one pending step for longer than HYPERBOLA_STUCK_AFTER, by step (read from the store at scrape time; step \"unknown\": past the first "+strconv.Itoa(stuckReadLimit)+" read).",
		[]string{"step"}, nil)
	m.stuckSecondsDesc = prometheus.NewDesc("hyperbola_session_stuck_seconds",
		"How long each stuck session has been in its pending step, for the "+strconv.Itoa(stuckSeriesLimit)+" stuck the longest (read from the store at scrape time).",
		[]string{"id", "step"}, nil)
	m.counterNames = []string{"requests", "client_errors", "server_errors", "rate_limited",
		"creates", "sleeps", "wakes", "updates", "deletes", "activities"}
	m.counterValues = []*int64Counter{&m.requests, &m.clientErrors, &m.serverErrors, &m.rateLimitedN,
		&m.created, &m.slept, &m.woken, &m.updated, &m.deleted, &m.touched}
	for i, name := range m.counterNames {
		v := m.counterValues[i]
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hyperbola_api_" + name + "_total", Help: "This instance's count of " + strings.ReplaceAll(name, "_", " ") + " (successful calls for the session operations).",
		}, func() float64 { return float64(v.Load()) }))
	}
	for _, p := range phaseNames { // every phase shows up, even before its first observation
		m.phases.WithLabelValues(p)
	}
	m.reg.MustRegister(m.reqDur, m.phases, m.limited, m.reports, sessionsCollector{m}, stuckCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.countSessions = m.count0
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	return m
}

// Registry returns the Server's Prometheus registry.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

func (m *metrics) observeRequest(pattern string, status int, d time.Duration) {
	m.reqDur.WithLabelValues(pattern, strconv.Itoa(status)).Observe(d.Seconds())
	m.requests.Add(1)
	switch {
	case status >= 500:
		m.serverErrors.Add(1)
	case status >= 400:
		m.clientErrors.Add(1)
	}
}

func (m *metrics) phase(name string, d time.Duration) {
	m.phases.WithLabelValues(name).Observe(d.Seconds())
}

func (m *metrics) count(c *int64Counter) { c.Add(1) }

// activityReport counts one recorded activity report of kind (one of activity.Kinds).
func (m *metrics) activityReport(kind string) { m.reports.WithLabelValues(kind).Inc() }

func (m *metrics) rateLimited(scope string) {
	m.rateLimitedN.Add(1)
	m.limited.WithLabelValues(scope).Inc()
}

// count0 counts sessions by state: through the Counter when there is one, else by paging the
// Manager's List (fine for thousands of sessions; give a Counter for more).
func (m *metrics) count0(ctx context.Context) (map[session.State]int, error) {
	if m.s.counter != nil {
		return m.s.counter.CountByState(ctx)
	}
	out := make(map[session.State]int, len(session.States))
	for _, st := range session.States {
		cursor := ""
		for page := 0; page < m.listMaxPages; page++ {
			res, err := m.s.m.List(ctx, session.ListOptions{State: st, Limit: m.listPageLimit, Cursor: cursor})
			if err != nil {
				return nil, err
			}
			out[st] += len(res.Sessions)
			if cursor = res.NextCursor; cursor == "" {
				break
			}
		}
	}
	return out, nil
}

type sessionsCollector struct{ m *metrics }

func (c sessionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.sessionsDesc }

func (c sessionsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.m.countTimeout)
	defer cancel()
	counts, err := c.m.countSessions(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.m.sessionsDesc, err)
		return
	}
	for _, st := range session.States {
		ch <- prometheus.MustNewConstMetric(c.m.sessionsDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
}

// Stuck sessions at scrape time: the per-step counts come from the records of the oldest
// stuckReadLimit (a bounded read however many are stuck, as when the cluster is down); one
// series per session for the oldest stuckSeriesLimit, so an alert names them without
// unbounded label values.
const (
	stuckReadLimit   = 1000
	stuckSeriesLimit = 50
)

// stuckSteps are the steps hyperbola_sessions_stuck always shows (0 when none is stuck), so an
// alert's expression has a series to compare.
var stuckSteps = []session.Pending{session.PendingApply, session.PendingReady, session.PendingBackup, session.PendingRemoval}

type stuckCollector struct{ m *metrics }

func (c stuckCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.stuckDesc
	ch <- c.m.stuckSecondsDesc
}

func (c stuckCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.s.stuck
	if src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.m.countTimeout)
	defer cancel()
	now := c.m.s.now()
	stuck, total, err := src.Stuck(ctx, now.Add(-c.m.s.opts.StuckAfter), stuckReadLimit)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.m.stuckDesc, err)
		return
	}
	byStep := make(map[string]int, len(stuckSteps)+1)
	for _, st := range stuckSteps {
		byStep[string(st)] = 0
	}
	for i, sess := range stuck {
		step := string(sess.Pending)
		byStep[step]++
		if i < stuckSeriesLimit {
			ch <- prometheus.MustNewConstMetric(c.m.stuckSecondsDesc, prometheus.GaugeValue,
				now.Sub(sess.PendingSince).Seconds(), sess.ID, step)
		}
	}
	if rest := total - len(stuck); rest > 0 {
		byStep["unknown"] += rest
	}
	for step, n := range byStep {
		ch <- prometheus.MustNewConstMetric(c.m.stuckDesc, prometheus.GaugeValue, float64(n), step)
	}
}

// MetricsResponse is GET /metrics' JSON (the seed's shape: sessions by state and counters).
// The counters are this instance's since it started; Prometheus sums them across instances.
type MetricsResponse struct {
	Sessions      SessionCounts    `json:"sessions"`
	Counters      map[string]int64 `json:"counters"`
	StartedAt     time.Time        `json:"started_at"`
	UptimeSeconds float64          `json:"uptime_seconds"`
}

// SessionCounts counts sessions; Total leaves the deleted ones (tombstones) out.
type SessionCounts struct {
	Total   int            `json:"total"`
	ByState map[string]int `json:"by_state"`
}

// metricsJSONOrText serves GET /metrics: JSON, unless the Accept header prefers Prometheus'
// text or OpenMetrics formats (what a Prometheus scrape sends).
func (s *Server) metricsJSONOrText(w http.ResponseWriter, r *http.Request) error {
	if wantsPrometheus(r.Header.Values("Accept")) {
		return s.metricsText(w, r)
	}
	if _, err := query(r); err != nil {
		return err
	}
	counts, err := s.metrics.countSessions(r.Context())
	if err != nil {
		if session.KindOf(err) == session.KindInternal && !errors.Is(err, context.DeadlineExceeded) {
			return session.Unavailable("session counts", err)
		}
		return err
	}
	out := MetricsResponse{
		Sessions:  SessionCounts{ByState: make(map[string]int, len(session.States))},
		Counters:  make(map[string]int64, len(s.metrics.counterNames)),
		StartedAt: s.metrics.started.UTC(), UptimeSeconds: s.now().Sub(s.metrics.started).Seconds(),
	}
	for _, st := range session.States {
		out.Sessions.ByState[string(st)] = counts[st]
		if st != session.StateDeleted {
			out.Sessions.Total += counts[st]
		}
	}
	for i, name := range s.metrics.counterNames {
		out.Counters[name] = s.metrics.counterValues[i].Load()
	}
	wire.WriteJSON(w, http.StatusOK, out)
	return nil
}

// metricsText serves the Prometheus exposition (text 0.0.4, or OpenMetrics when asked).
func (s *Server) metricsText(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	s.metrics.handler.ServeHTTP(w, r)
	return nil
}

// wantsPrometheus reports whether Accept ranks text/plain or OpenMetrics above JSON.
func wantsPrometheus(accept []string) bool {
	var prom, js float64 = -1, -1
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
			switch mt {
			case "application/openmetrics-text", "text/plain":
				prom = max(prom, q)
			case "application/json":
				js = max(js, q)
			}
		}
	}
	return prom > 0 && prom > js
}
