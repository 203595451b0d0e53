// Command server runs Hyperbola's functions: locally (make run) and as the container
// entrypoint on Cloud Run.
//
//   - FUNCTION_TARGET set (Cloud Run: SessionAPI or IdleSweep): the functions framework serves
//     that function at "/" and every path below it, so the API's routes are at the root.
//   - FUNCTION_TARGET unset (local): one process serves both, the API at the root
//     (/session/create, /health, ...) and the sweep at /IdleSweep. The framework alone would
//     serve each function at its exact path only, which cannot hold the API's routes.
//
// The address is HYPERBOLA_LISTEN (default 127.0.0.1:8080); Cloud Run's PORT makes it
// 0.0.0.0:PORT.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/hyperbola-in/terraform-provider-hyperbola/functions"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hyperbola server:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("HYPERBOLA_LISTEN=%q: want host:port: %w", cfg.ListenAddr, err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := functions.Warm(); err != nil {
		log.Error("the control plane could not be built yet; requests will retry", "err", err)
	}
	defer func() { _ = functions.Close() }()

	if target := os.Getenv("FUNCTION_TARGET"); target != "" {
		log.Info("serving one function at /", "function", target, "addr", cfg.ListenAddr)
		if err := funcframework.StartHostPort(host, port); err != nil {
			return fmt.Errorf("functions framework: %w", err)
		}
		return nil
	}

	srv := &http.Server{
		Addr:              cfg.ListenAddr,
		Handler:           functions.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("serving SessionAPI at / and IdleSweep at /IdleSweep", "addr", cfg.ListenAddr, "api_keys", len(cfg.APIKeys))
	select {
	case err := <-errc:
		return fmt.Errorf("listening on %s: %w", cfg.ListenAddr, err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
