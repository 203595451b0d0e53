// Package functions is the Cloud Run functions' registration, and nothing else: it reads the
// configuration, has internal/stack build the control plane's parts once, and registers
//
//	SessionAPI  the HTTP API (internal/api), every route at the root: /session/create, ...,
//	            /usage, /reconcile and /sweep (the same sweep as IdleSweep)
//	IdleSweep   the scheduled sweep (internal/sweep): POST, with Cloud Scheduler's OIDC token or an API key
//
// with functions.HTTP in init(). init() must not fail, so the parts are built on the first
// request; a build that fails (a bad setting, say) answers 503 in the API's error shape and is
// tried again by a later request, at most once every few seconds, instead of leaving the
// instance broken until Cloud Run recycles it.
//
// Serving: with FUNCTION_TARGET=SessionAPI (or IdleSweep) the functions framework serves that
// one function at "/" and every path below it, so the API's routes are at the root. Without
// FUNCTION_TARGET the framework would serve each function only at its exact path
// ("/SessionAPI"), which cannot hold the API's routes; functions/cmd/server then serves
// Handler(): the API at the root and the sweep at /IdleSweep.
package functions

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

func init() {
	functions.HTTP("SessionAPI", SessionAPI)
	functions.HTTP("IdleSweep", IdleSweep)
}

// SessionAPI serves the HTTP API.
func SessionAPI(w http.ResponseWriter, r *http.Request) {
	serve(w, r, func(a *app) http.Handler { return a.API })
}

// IdleSweep runs one sweep (POST).
func IdleSweep(w http.ResponseWriter, r *http.Request) {
	serve(w, r, func(a *app) http.Handler { return a.Sweep })
}

// serve hands the request to the handler pick chooses of the parts, built on first use; while
// they cannot be built it answers 503 in the API's error shape.
func serve(w http.ResponseWriter, r *http.Request, pick func(*app) http.Handler) {
	a, err := current()
	if err != nil {
		wire.WriteError(w, r, logger, session.Unavailable("control plane", err))
		return
	}
	pick(a).ServeHTTP(w, r)
}

// Handler serves every function from one process (functions/cmd/server without
// FUNCTION_TARGET): the sweep at /IdleSweep, the API at the root.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/IdleSweep" {
			IdleSweep(w, r)
			return
		}
		SessionAPI(w, r)
	})
}

// Warm builds the parts now instead of on the first request (functions/cmd/server calls it
// at start so a bad setting shows in the log at once).
func Warm() error {
	_, err := current()
	return err
}

// Close releases the parts (on shutdown).
func Close() error {
	w := &state
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.app.Swap(nil)
	if a == nil {
		return nil
	}
	return a.stack.Close()
}

// app is one process's wiring: the stack and its front doors.
type app struct {
	stack *stack.Stack
	*stack.Handlers
}

// retryBuild is how long a failed build is remembered before a request tries again.
const retryBuild = 5 * time.Second

// wiring is the process-wide state of this package: the parts, built once.
type wiring struct {
	mu      sync.Mutex
	app     atomic.Pointer[app]
	err     error
	failed  time.Time
	fromEnv func() (*config.Config, error)
}

var (
	state  = wiring{fromEnv: config.FromEnv}
	logger = newLogger()
)

func current() (*app, error) {
	w := &state
	if a := w.app.Load(); a != nil {
		return a, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if a := w.app.Load(); a != nil {
		return a, nil
	}
	if w.err != nil && time.Since(w.failed) < retryBuild {
		return nil, w.err
	}
	a, err := build(w.fromEnv)
	if err != nil {
		w.err, w.failed = err, time.Now()
		logger.Error("building the control plane", "err", err)
		return nil, err
	}
	w.err = nil
	w.app.Store(a)
	return a, nil
}

// build reads the configuration and builds the parts (internal/stack). Nothing is contacted
// here; the context is not a request's, since the parts (Google credentials among them)
// outlive it.
func build(fromEnv func() (*config.Config, error)) (*app, error) {
	cfg, err := fromEnv()
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	ctx := context.Background()
	st, err := stack.New(ctx, cfg, stack.Parts{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("building the stack: %w", err)
	}
	h, err := st.Handlers(ctx)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("building the handlers: %w", err)
	}
	return &app{stack: st, Handlers: h}, nil
}

// newLogger logs JSON lines to stderr with Cloud Logging's field names (severity, message).
func newLogger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("HYPERBOLA_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				a.Key = "severity"
				if lv, ok := a.Value.Any().(slog.Level); ok && lv == slog.LevelWarn {
					a.Value = slog.StringValue("WARNING")
				}
			case slog.MessageKey:
				a.Key = "message"
			}
			return a
		},
	}))
}
