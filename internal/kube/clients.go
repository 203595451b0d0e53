package kube

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// Budget is a client-side rate limit: QPS requests a second on average, Burst at once.
type Budget struct {
	QPS   float32
	Burst int
}

// Budgets are a client-side budget for writes and one for reads (a zero Budget: the default).
type Budgets struct {
	Write, Read Budget
}

// The default budgets. Writes: a hundred creates at once are 600 requests, which at 300/s leave
// in the time the API server takes to admit them anyway (bench/core: the create call at c=100
// as fast as an unthrottled client's; at 100/s it waited a second and a half longer). Reads get
// their own, so a crowd of status polls can delay only other reads, never a create, a wake or
// a sleep.
var (
	DefaultWriteBudget = Budget{QPS: 300, Burst: 600}
	DefaultReadBudget  = Budget{QPS: 50, Burst: 100}
)

// Clients are the clients of one rest.Config with a client-side limiter each for writes and
// for reads: Write applies, patches, creates and deletes (and makes the reads a write depends
// on); Read and Metadata make the reads of the methods that only observe. Write and Read speak
// protobuf (Protobuf).
//
// Gateway and GatewayRead are the Gateway API's clients (HTTPRoutes, the Gateway) on the same
// budgets, and Dynamic (on the write budget) applies GKE's policies, which have no Go types:
// they are used in gateway mode alone (Options.Routing), so a cluster without the Gateway API's
// kinds is never asked about them in ingress mode.
type Clients struct {
	Write       kubernetes.Interface
	Read        kubernetes.Interface
	Metadata    metadata.Interface // on the read budget
	Gateway     gateway.Interface
	GatewayRead gateway.Interface
	Dynamic     dynamic.Interface
}

// Protobuf is a copy of cfg (its rate limiter shared) that speaks protobuf, as the cluster's
// own components do, for the built-in kinds of the typed clientset: the API server encodes
// every object it sends (list, watch event, a write's answer) several times cheaper than as
// JSON, and the client decodes it cheaper too. An apply's or a patch's body keeps its own
// type. Only for kubernetes.Interface: custom resources (the Gateway API's) have no protobuf,
// so their clients keep cfg's JSON (the metadata client asks for protobuf metadata itself).
func Protobuf(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.ContentType = runtime.ContentTypeProtobuf
	c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return c
}

// NewClients builds Clients from cfg with budgets b. Both share cfg's HTTP client (one connection pool); cfg's own QPS, Burst and
// RateLimiter are replaced.
func NewClients(cfg *rest.Config, b Budgets) (*Clients, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: HTTP client: %w", err)
	}
	// one limiter per budget, set explicitly: each client built from a config without one
	// would make its own (the metadata client would not share the typed reads' budget)
	with := func(b, def Budget) *rest.Config {
		c := rest.CopyConfig(cfg)
		c.QPS, c.Burst = def.QPS, def.Burst
		if b.QPS > 0 {
			c.QPS = b.QPS
		}
		if b.Burst > 0 {
			c.Burst = b.Burst
		}
		c.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(c.QPS, c.Burst)
		return c
	}
	wc, rc := with(b.Write, DefaultWriteBudget), with(b.Read, DefaultReadBudget)
	var out Clients
	if out.Write, err = kubernetes.NewForConfigAndClient(Protobuf(wc), hc); err != nil {
		return nil, fmt.Errorf("kube: write client: %w", err)
	}
	if out.Read, err = kubernetes.NewForConfigAndClient(Protobuf(rc), hc); err != nil {
		return nil, fmt.Errorf("kube: read client: %w", err)
	}
	if out.Metadata, err = metadata.NewForConfigAndClient(rc, hc); err != nil {
		return nil, fmt.Errorf("kube: metadata client: %w", err)
	}
	if out.Gateway, err = gateway.NewForConfigAndClient(wc, hc); err != nil {
		return nil, fmt.Errorf("kube: gateway client: %w", err)
	}
	if out.GatewayRead, err = gateway.NewForConfigAndClient(rc, hc); err != nil {
		return nil, fmt.Errorf("kube: gateway read client: %w", err)
	}
	if out.Dynamic, err = dynamic.NewForConfigAndClient(wc, hc); err != nil {
		return nil, fmt.Errorf("kube: dynamic client: %w", err)
	}
	return &out, nil
}
