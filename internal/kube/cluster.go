package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Cluster implements session.Cluster with client-go: server-side apply with field manager
// "hyperbola", scaling through the scale subresource, observation by label. Every method is
// idempotent, and a bad session id returns session.CheckID's error before any API call.
//
// It holds two clientsets (see Clients): the methods that change the cluster make every
// request, their reads included, through the write one; the methods that only observe
// (Observe, ObserveAll, Readiness, Password, WorkspacePodIPs, the status of a Job) through the
// read one, whose client-side budget is its own.
type Cluster struct {
	cs     kubernetes.Interface // writes, and the reads a write depends on
	rd     kubernetes.Interface // the reads of the methods that only observe
	md     metadata.Interface   // nil: Secrets are listed through rd (see NewCluster)
	gw     gateway.Interface    // gateway mode: HTTPRoutes and the Gateway (writes)
	gwrd   gateway.Interface    // gateway mode: HTTPRoutes (reads)
	dyn    dynamic.Interface    // gateway mode on GKE: GKE's policies
	opts   Options
	now    func() time.Time
	rounds *readinessRounds // nil: Readiness reads per call (Options.ReadinessInterval < 0)
	pods   *podWatch        // WatchPods's, shared by the waiters
}

var _ session.Cluster = (*Cluster)(nil)

// NewClusterFromClients returns a Cluster that manages sessions in opts.Namespace through
// cl: writes through cl.Write, reads through cl.Read, and Secrets listed through cl.Metadata
// as metadata only, so no IDE password leaves the API server in a list (only Password reads
// one, by name). The options are expected to be valid (internal/stack builds them from the
// configuration; Options.Validate checks them).
func NewClusterFromClients(cl *Clients, opts Options) *Cluster {
	c := &Cluster{cs: cl.Write, rd: cl.Read, md: cl.Metadata, gw: cl.Gateway, gwrd: cl.GatewayRead, dyn: cl.Dynamic, opts: opts, now: time.Now}
	if c.gwrd == nil {
		c.gwrd = c.gw
	}
	if iv := opts.readinessInterval(); iv > 0 {
		c.rounds = newReadinessRounds(iv, clock.RealClock{}, c.readinessRound)
	}
	c.pods = newPodWatch(c.rd, opts.Namespace)
	return c
}

// NewClusterWithMetadata is NewClusterFromClients with one clientset for writes and reads
// (so one client-side budget), and Secrets listed through md.
func NewClusterWithMetadata(cs kubernetes.Interface, md metadata.Interface, opts Options) *Cluster {
	return NewClusterFromClients(&Clients{Write: cs, Read: cs, Metadata: md}, opts)
}

// NewCluster is NewClusterWithMetadata without a metadata client, for callers that hold only a
// clientset (a fake one in unit tests): it lists Secrets through cs, so their data crosses the
// wire before it is dropped. Anything holding a rest.Config should use NewClients.
func NewCluster(cs kubernetes.Interface, opts Options) *Cluster {
	return NewClusterWithMetadata(cs, nil, opts)
}

// Options returns the cluster's options.
func (c *Cluster) Options() Options { return c.opts }

// RESTConfig loads a client configuration: from the kubeconfig file (and kubeContext, "" for
// its current one) when either is set, from the pod's service account otherwise.
// Client-side rate limiting is raised from client-go's 5 QPS to 100: one Apply makes six requests
// at once and one Observe seven. NewClients gives writes and reads budgets of their own.
func RESTConfig(kubeconfig, kubeContext string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" && kubeContext == "" {
		if cfg, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("kube: in-cluster config (set KUBECONFIG outside a cluster): %w", err)
		}
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if kubeconfig != "" {
			rules.ExplicitPath = kubeconfig
		}
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
		if cfg, err = cc.ClientConfig(); err != nil {
			return nil, fmt.Errorf("kube: loading kubeconfig %q (context %q): %w", kubeconfig, kubeContext, err)
		}
	}
	if cfg.QPS == 0 {
		cfg.QPS = 100
	}
	if cfg.Burst == 0 {
		cfg.Burst = 200
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hyperbola"
	}
	return cfg, nil
}

// parallel runs every step at once and joins their errors: one failing step does not stop
// the others (each is idempotent, so a retry converges).
func parallel(ctx context.Context, steps ...func(context.Context) error) error {
	var g errgroup.Group
	errs := make([]error, len(steps))
	for i, step := range steps {
		g.Go(func() error {
			errs[i] = step(ctx)
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// typed converts an apply configuration into the typed object it describes (for Create).
func typed[T any](ac any) (*T, error) {
	js, err := json.Marshal(ac)
	if err != nil {
		return nil, fmt.Errorf("kube: encoding %T: %w", ac, err)
	}
	out := new(T)
	if err := json.Unmarshal(js, out); err != nil {
		return nil, fmt.Errorf("kube: decoding %T: %w", out, err)
	}
	return out, nil
}
