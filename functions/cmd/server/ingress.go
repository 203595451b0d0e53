package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"k8s.io/client-go/kubernetes"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/hyperbola-in/terraform-provider-hyperbola/functions"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/devingress"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
)

// localIngressEnv names the address of the local entry point to workspaces
// (internal/devingress), e.g. 127.0.0.1:8081. Local runs only: a deployment has an ingress
// controller.
const localIngressEnv = "HYPERBOLA_LOCAL_INGRESS"

// localIngress builds the server of the local entry point at addr: workspace hosts to their
// pods, or to this process's activator while they are not running, by the workspaces'
// Ingresses or, in gateway mode, their HTTPRoutes.
func localIngress(ctx context.Context, cfg *config.Config, addr string, log *slog.Logger) (*http.Server, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: want host:port: %w", localIngressEnv, addr, err)
	}
	routing := cfg.Routing
	gateway := devingress.GatewayRef{Namespace: cfg.GatewayNamespace, Name: cfg.GatewayName} // "" namespace: the workspaces'
	rc, err := stack.RESTConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// A workbench loads a few hundred files, each read three objects: no client-side throttle.
	rc.QPS, rc.Burst = 500, 1000
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	opts := devingress.Options{Namespace: cfg.Namespace, Domain: cfg.Domain, Routing: routing, Logger: log}
	if routing == devingress.RoutingGateway {
		opts.Gateway = gateway
		if opts.GatewayClient, err = gatewayclient.NewForConfig(rc); err != nil {
			return nil, fmt.Errorf("gateway API client: %w", err)
		}
	}
	if cfg.WakeOnAccess() {
		opts.ActivatorService, opts.Activator = cfg.ActivatorService, functions.Handler()
	}
	h, err := devingress.New(client, opts)
	if err != nil {
		return nil, err
	}
	log.Info("local ingress: open a workspace at http://vs-code-<id>."+cfg.Domain+":"+port+"/",
		"addr", addr, "namespace", cfg.Namespace, "wake_on_access", cfg.WakeOnAccess(), "routing", routing,
		"gateway", gatewayLabel(routing, gateway))
	// No read or write timeout: code-server's WebSockets stay open for hours.
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}, nil
}

// gatewayLabel names the Gateway HTTPRoutes must attach to, for the log ("" in ingress mode).
func gatewayLabel(routing string, gw devingress.GatewayRef) string {
	if routing != devingress.RoutingGateway {
		return ""
	}
	return gw.Namespace + "/" + gw.Name
}
