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
// 0.0.0.0:PORT. Locally, HYPERBOLA_LOCAL_INGRESS (e.g. 127.0.0.1:8081) also serves the local
// cluster's entry point to workspaces there (internal/devingress): the local cluster has no
// ingress controller nor Gateway. It follows the workspaces' Ingresses or, with
// HYPERBOLA_ROUTING=gateway, their HTTPRoutes on the Gateway HYPERBOLA_GATEWAY_NAME. It stops
// with the server. HYPERBOLA_LOCAL_POD_LINK (e.g. 127.0.0.1:8099) gives each of the local
// cluster's workspace pods that address on its own loopback, relayed to the API here
// (internal/podlink), so the IDE extension reaches this process at
// HYPERBOLA_ACTIVITY_URL=http://127.0.0.1:8099.
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
	servers := []*http.Server{srv}
	if addr := os.Getenv(localIngressEnv); addr != "" {
		ing, err := localIngress(ctx, cfg, addr, log)
		if err != nil {
			return err
		}
		servers = append(servers, ing)
	}
	var linkDone <-chan struct{}
	if addr := os.Getenv(localPodLinkEnv); addr != "" {
		if linkDone, err = startPodLink(ctx, cfg, addr, log); err != nil {
			return err
		}
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			if err := s.ListenAndServe(); err != nil {
				errc <- fmt.Errorf("listening on %s: %w", s.Addr, err)
			}
		}()
	}
	log.Info("serving SessionAPI at / and IdleSweep at /IdleSweep", "addr", cfg.ListenAddr, "api_keys", len(cfg.APIKeys))
	var failed error
	select {
	case failed = <-errc:
	case <-ctx.Done():
	}
	log.Info("shutting down")
	stop() // ends the pod link too
	if linkDone != nil {
		<-linkDone
	}
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			failed = errors.Join(failed, fmt.Errorf("shutdown of %s: %w", s.Addr, err))
		}
	}
	return failed
}
