// Package stack is the control plane's wiring, in one place: the only reader of the
// configuration (internal/config) and the only code that puts the parts together. New builds
// the Redis and Kubernetes clients, the cluster adapter, the store, the durable record, the
// session Service, the rate limiter and the reconcile runner; Handlers adds the HTTP front
// doors (the API with the activator in front of it, and the sweep). The functions, the local
// server (functions/cmd/server), the provider's direct mode and the benchmarks use it; the
// packages it wires take resolved options and never see the configuration.
package stack

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/ratelimit"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/reconcile"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// Stack is the control plane's parts, built once per process.
type Stack struct {
	Config *config.Config
	Logger *slog.Logger
	Redis  redis.UniversalClient
	// Kube is the write clientset (Parts.Kube when given): the cluster adapter's reads have
	// their own, with a client-side budget of their own (kube.NewClients).
	Kube    kubernetes.Interface
	Cluster *kube.Cluster
	Store   *store.Store
	Service *session.Service
	// Events is the durable record in Firestore; nil when GOOGLE_CLOUD_PROJECT is not set.
	// The parts that take it as an interface get it through durable, never as a nil pointer.
	Events *events.Recorder
	// Limiter counts requests per client, key and session in Redis (the API, the activator).
	Limiter *ratelimit.Limiter
	// Reconciler runs one reconcile at a time across instances (POST /reconcile, the sweep).
	Reconciler *sweep.ReconcileRunner
	closers    []func() error
}

// Parts lets a caller supply parts it already has (tests, the provider); nil ones are built
// from the configuration.
type Parts struct {
	Redis redis.UniversalClient
	Kube  kubernetes.Interface
	// Metadata lists Secrets as metadata only; it is built with Kube when Kube is nil. With
	// Kube set and Metadata nil, Secrets are listed through Kube, passwords included. Kube
	// set, it makes the writes and the reads (one client-side budget).
	Metadata metadata.Interface
	// Gateway and Dynamic, with Kube set, are the Gateway API's client and the dynamic one
	// (GKE's policies) that gateway routing (HYPERBOLA_ROUTING=gateway) needs; built with
	// Kube when Kube is nil.
	Gateway gateway.Interface
	Dynamic dynamic.Interface
	// RESTConfig, with Kube nil, is what the clients are built from instead of the
	// configuration's cluster (a benchmark's local cluster), with the configuration's budgets.
	RESTConfig *rest.Config
	Logger     *slog.Logger
	Recorder   session.Recorder
	Now        func() time.Time
	// KubeOptions adjusts the cluster adapter's options after they are read from the config.
	KubeOptions func(*kube.Options)
}

// New builds the stack from cfg. Nothing is contacted yet: Check does that.
func New(ctx context.Context, cfg *config.Config, parts Parts) (*Stack, error) {
	s := &Stack{Config: cfg, Logger: parts.Logger, Redis: parts.Redis, Kube: parts.Kube}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Redis == nil {
		rdb, err := store.NewRedisClient(store.RedisOptions{
			Addr: cfg.RedisAddr(), Password: cfg.RedisPassword, DB: cfg.RedisDB, CA: []byte(cfg.RedisCA),
		})
		if err != nil {
			return nil, fmt.Errorf("redis (REDIS_HOST, REDIS_PORT, HYPERBOLA_REDIS_CA): %w", err)
		}
		s.Redis = rdb
		s.closers = append(s.closers, rdb.Close)
	}
	clients := &kube.Clients{Write: s.Kube, Read: s.Kube, Metadata: parts.Metadata, Gateway: parts.Gateway, Dynamic: parts.Dynamic}
	if s.Kube == nil {
		rc := parts.RESTConfig
		if rc == nil {
			var err error
			if rc, err = RESTConfig(ctx, cfg); err != nil {
				return nil, err
			}
		}
		var err error
		if clients, err = kube.NewClients(rc, KubeBudgets(cfg)); err != nil {
			return nil, err
		}
		s.Kube = clients.Write
	}
	kopts, err := KubeOptions(cfg)
	if err != nil {
		return nil, err
	}
	if parts.KubeOptions != nil {
		parts.KubeOptions(&kopts)
		if err := kopts.Validate(); err != nil {
			return nil, err
		}
	}
	s.Cluster = kube.NewClusterFromClients(clients, kopts)
	s.Store = store.New(s.Redis, cfg.RedisPrefix, store.Options{TombstoneTTL: cfg.TombstoneTTL, Now: parts.Now, Logger: s.Logger})
	recorder := parts.Recorder
	if recorder == nil && cfg.FirestoreProject != "" {
		fs, err := firestore.NewClient(ctx, cfg.FirestoreProject)
		if err != nil {
			return nil, fmt.Errorf("firestore client for project %s: %w", cfg.FirestoreProject, err)
		}
		s.closers = append(s.closers, fs.Close)
		eo := eventsOptions(cfg)
		eo.Redis, eo.Now, eo.Logger = s.Redis, parts.Now, s.Logger
		s.Events = events.New(fs, eo)
		recorder = s.Events
	}
	so := serviceOptions(cfg)
	so.Now, so.Logger, so.Recorder = parts.Now, s.Logger, recorder
	s.Service = session.NewService(s.Cluster, s.Store, so)
	s.Limiter = ratelimit.New(s.Redis, cfg.RedisPrefix)
	s.Reconciler = sweep.NewReconcileRunner(reconcile.Deps{
		Cluster: s.Cluster, Store: s.Store, Records: s.durable().records, Now: s.Service.Options().Now, Logger: s.Logger,
	}, s.Store, ReconcileOptions(cfg), 0)
	return s, nil
}

// durable is the durable record as each part that takes it wants it: every field nil without
// Firestore (an interface holding a nil *events.Recorder would not be nil).
type durable struct {
	records reconcile.Records
	flusher sweep.Flusher
	usage   api.UsageReporter
}

func (s *Stack) durable() durable {
	if s.Events == nil {
		return durable{}
	}
	return durable{records: s.Events, flusher: s.Events, usage: s.Events}
}

// Check reports each dependency's health: "redis" and "kubernetes".
func (s *Stack) Check(ctx context.Context) map[string]error {
	out := map[string]error{"redis": s.Store.Ping(ctx)}
	_, err := s.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		err = fmt.Errorf("kubernetes: %w", err)
	}
	out["kubernetes"] = err
	return out
}

// Close releases what New opened.
func (s *Stack) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}

// RESTConfig is how the control plane reaches Kubernetes: a kubeconfig (KUBECONFIG and
// HYPERBOLA_KUBE_CONTEXT), a GKE endpoint with Google credentials (HYPERBOLA_KUBE_ENDPOINT and
// HYPERBOLA_KUBE_CA: Cloud Run's service account, mapped to RBAC by infra/), or in-cluster.
func RESTConfig(ctx context.Context, cfg *config.Config) (*rest.Config, error) {
	if cfg.KubeEndpoint == "" {
		return kube.RESTConfig(cfg.Kubeconfig, cfg.KubeContext)
	}
	ca, err := base64.StdEncoding.DecodeString(cfg.KubeCA)
	if err != nil {
		return nil, fmt.Errorf("HYPERBOLA_KUBE_CA must be base64 PEM: %w", err)
	}
	ts, err := google.DefaultTokenSource(ctx, "https://www.googleapis.com/auth/cloud-platform")
	if err != nil {
		return nil, fmt.Errorf("google credentials for %s: %w", cfg.KubeEndpoint, err)
	}
	rc := &rest.Config{
		Host:            cfg.KubeEndpoint,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS:             100, Burst: 200, UserAgent: "hyperbola",
	}
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, ts), Base: rt}
	})
	return rc, nil
}
