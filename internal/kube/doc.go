// Package kube is the Kubernetes side of Hyperbola: pure builders of every object a session
// owns, and Cluster, which implements session.Cluster with client-go.
//
// Where things are:
//   - names.go, labels.go: the one place for object names, labels, annotations and selectors.
//   - options.go: Options, the deployment-wide settings, and their checks; placement.go: where
//     pods run (node selector, tolerations); security.go: the pod security every pod gets.
//   - resolve.go: a session.Workspace resolved once (names, labels, image, quantities) into
//     the input every workspace builder takes; the builders themselves cannot fail.
//   - a file per object kind, its golden test beside it: pvc.go, deployment.go, service.go,
//     ingress.go, networkpolicy.go, secret.go, backupjob.go (and backupscript.go, the script
//     the backup Job runs), and the Jobs that read and remove archives: restorejob.go,
//     checkjob.go, removaljob.go with their scripts; archives.go holds what they share (the
//     archive locations they accept, their pod, start-or-find).
//   - routing.go: the routing modes (an Ingress per workspace, or an HTTPRoute per workspace on
//     one shared Gateway) and their settings; httproute.go, gateway.go and gkepolicy.go (GKE's
//     per-Service policies, unstructured) build gateway mode's objects.
//   - cluster.go: Cluster and its client configuration; then a file per operation: apply.go,
//     route.go (the routes of either mode, and EnsureGateway), scale.go, observe.go, readiness.go, password.go, backup.go, restore.go,
//     check.go, removal.go, delete.go, and errors.go for how a failed API call becomes a
//     session error.
//
// Builders never call the API; the API calls never build. A session id that is not valid
// (session.ValidID) never reaches a name, a label or an API call.
package kube
