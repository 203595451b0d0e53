package kube

import (
	"maps"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// GKE's policies for a workspace's Service behind a GKE Gateway (networking.gke.io/v1). They
// have no Go types in the module graph, so they are built as unstructured objects and applied
// through the dynamic client; a cluster without GKE's controller has no such kinds (the local
// one: golden tests alone there).
var (
	HealthCheckPolicyResource = schema.GroupVersionResource{Group: "networking.gke.io", Version: "v1", Resource: "healthcheckpolicies"}
	BackendPolicyResource     = schema.GroupVersionResource{Group: "networking.gke.io", Version: "v1", Resource: "gcpbackendpolicies"}
)

// The kinds of GKE's policies, for errors.
const (
	ObjectHealthCheckPolicy session.ObjectKind = "HealthCheckPolicy"
	ObjectBackendPolicy     session.ObjectKind = "GCPBackendPolicy"
)

// HealthCheckPath is what GKE's load balancer asks a workspace: code-server answers 200 on
// /healthz without a password, where "/" is a 302 to its login (GKE's default check of "/"
// would mark every workspace unhealthy).
const HealthCheckPath = "/healthz"

// BackendTimeoutSec is the workspace backend's timeout on GKE's load balancer. There it bounds
// a websocket's whole life, not its silence: code-server's websocket stays open for as long as
// the tab is, so it is a day, not nginx's hour (the editor reconnects after it).
const BackendTimeoutSec int64 = 86400

// HealthCheckPolicy builds the workspace's HealthCheckPolicy, vs-code-<id>: GKE's load balancer
// checks the workspace's Service on its serving port at HealthCheckPath.
func HealthCheckPolicy(ws session.Workspace, o Options) (*unstructured.Unstructured, error) {
	return build(ws, o, healthCheckPolicy)
}

func healthCheckPolicy(w workspace, o Options) *unstructured.Unstructured {
	return gkePolicy(w, o, "HealthCheckPolicy", map[string]any{
		"config": map[string]any{
			"type": "HTTP",
			"httpHealthCheck": map[string]any{
				"portSpecification": "USE_SERVING_PORT",
				"requestPath":       HealthCheckPath,
			},
		},
	})
}

// BackendPolicy builds the workspace's GCPBackendPolicy, vs-code-<id>: the backend timeout
// long-lived websockets need (BackendTimeoutSec).
func BackendPolicy(ws session.Workspace, o Options) (*unstructured.Unstructured, error) {
	return build(ws, o, backendPolicy)
}

func backendPolicy(w workspace, o Options) *unstructured.Unstructured {
	return gkePolicy(w, o, "GCPBackendPolicy", map[string]any{"timeoutSec": BackendTimeoutSec})
}

// gkePolicy is a policy of kind targeting the workspace's Service with spec.default def.
func gkePolicy(w workspace, o Options, kind string, def map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.gke.io/v1",
		"kind":       kind,
		"metadata": map[string]any{
			"name":      w.names.Workspace,
			"namespace": o.Namespace,
		},
		"spec": map[string]any{
			"default":   def,
			"targetRef": map[string]any{"group": "", "kind": "Service", "name": w.names.Workspace},
		},
	}}
	u.SetLabels(maps.Clone(w.labels))
	u.SetAnnotations(maps.Clone(w.annotations))
	return u
}
