package main

import (
	"strings"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/devingress"
)

func TestRoutingOf(t *testing.T) {
	cfg := &config.Config{Namespace: "workspaces"}
	for name, tc := range map[string]struct {
		env     map[string]string
		routing string
		gateway devingress.GatewayRef
	}{
		"defaults": {nil, "ingress", devingress.GatewayRef{Namespace: "workspaces", Name: "hyperbola"}},
		"gateway":  {map[string]string{routingEnv: "Gateway"}, "gateway", devingress.GatewayRef{Namespace: "workspaces", Name: "hyperbola"}},
		"its Gateway": {map[string]string{routingEnv: "gateway", gatewayNameEnv: "shared", gatewayNamespaceEnv: "gateways"},
			"gateway", devingress.GatewayRef{Namespace: "gateways", Name: "shared"}},
	} {
		routing, gw, err := routingOf(cfg, func(k string) string { return tc.env[k] })
		if err != nil || routing != tc.routing || gw != tc.gateway {
			t.Errorf("%s: %q %+v %v, want %q %+v", name, routing, gw, err, tc.routing, tc.gateway)
		}
	}
	_, _, err := routingOf(cfg, func(k string) string { return map[string]string{routingEnv: "mesh"}[k] })
	if err == nil || !strings.Contains(err.Error(), routingEnv) {
		t.Fatalf("a bad mode: %v, want an error naming %s", err, routingEnv)
	}
}
