// Command relay is the activator relay of gateway routing on GKE (internal/relay): the
// in-cluster Service hyperbola-activator that a sleeping workspace's HTTPRoute names. It
// listens for plain HTTP on PORT and relays to https://HYPERBOLA_ACTIVATOR_HOST, verifying it
// with the system roots or HYPERBOLA_ACTIVATOR_CA_FILE (a PEM bundle). With
// HYPERBOLA_RELAY_PASSTHROUGH_PORT it also copies TCP on that port to the activator's 443,
// so Ingresses written for the ExternalName Service keep working while both entry points
// serve (docs/operations/routing.md). It holds no credentials.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/relay"
)

// shutdownGrace is how long open requests get after SIGTERM (the pod's grace period is 30 s).
const shutdownGrace = 20 * time.Second

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("relay stopped", "err", err)
		os.Exit(1)
	}
}

// settings are the relay's environment, resolved.
type settings struct {
	port, passthroughPort string
	opts                  relay.Options
}

func fromEnv(log *slog.Logger) (settings, error) {
	s := settings{port: os.Getenv("PORT"), passthroughPort: os.Getenv("HYPERBOLA_RELAY_PASSTHROUGH_PORT")}
	if s.port == "" {
		s.port = "8080"
	}
	for name, p := range map[string]string{"PORT": s.port, "HYPERBOLA_RELAY_PASSTHROUGH_PORT": s.passthroughPort} {
		if n, err := strconv.Atoi(p); p != "" && (err != nil || n < 1 || n > 65535) {
			return s, fmt.Errorf("%s=%q: want a port number", name, p)
		}
	}
	s.opts = relay.Options{Host: os.Getenv("HYPERBOLA_ACTIVATOR_HOST"), Logger: log}
	if err := s.opts.Validate(); err != nil {
		return s, fmt.Errorf("HYPERBOLA_ACTIVATOR_HOST: %w", err)
	}
	if file := os.Getenv("HYPERBOLA_ACTIVATOR_CA_FILE"); file != "" {
		pem, err := os.ReadFile(file)
		if err != nil {
			return s, fmt.Errorf("HYPERBOLA_ACTIVATOR_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return s, fmt.Errorf("HYPERBOLA_ACTIVATOR_CA_FILE=%s: no PEM certificate in it", file)
		}
		s.opts.RootCAs = pool
	}
	return s, nil
}

func run(ctx context.Context, log *slog.Logger) error {
	s, err := fromEnv(log)
	if err != nil {
		return err
	}
	h, err := relay.Handler(s.opts)
	if err != nil {
		return err
	}
	srv := relay.Server(":"+s.port, h, log)
	errs := make(chan error, 2)
	go func() {
		log.Info("relaying", "port", s.port, "activator", s.opts.Host, "custom_roots", s.opts.RootCAs != nil)
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("http: %w", err)
		}
	}()
	if s.passthroughPort != "" {
		ln, err := net.Listen("tcp", ":"+s.passthroughPort)
		if err != nil {
			return fmt.Errorf("HYPERBOLA_RELAY_PASSTHROUGH_PORT: %w", err)
		}
		log.Info("passing TCP through", "port", s.passthroughPort, "activator", s.opts.Host)
		go func() {
			if err := relay.Passthrough(ctx, ln, s.opts); err != nil {
				errs <- err
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		return err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
