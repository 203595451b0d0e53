package kube

import (
	"context"
	"errors"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// DeleteWorkspace deletes the session's Deployment, Service, Ingress, NetworkPolicy, Secret and
// the TLS Secret cert-manager wrote for its Ingress (in gateway mode also its HTTPRoute, and
// GKE's policies on a GKE Gateway), at once, in the background (dependents
// go with them); with deletePVC also the claim, the session's finished backup Jobs and its
// restore Jobs (a running one too: its volume is going).
// Objects already gone are not an error. It returns once the deletions are accepted.
func (c *Cluster) DeleteWorkspace(ctx context.Context, id string, deletePVC bool) error {
	n, err := NamesFor(id)
	if err != nil {
		return err
	}
	ns, core, net := c.opts.Namespace, c.cs.CoreV1(), c.cs.NetworkingV1()
	steps := []func(context.Context) error{
		c.deleteStep(session.ObjectDeployment, c.cs.AppsV1().Deployments(ns), n.Workspace),
		c.deleteStep(session.ObjectService, core.Services(ns), n.Workspace),
		c.deleteStep(session.ObjectIngress, net.Ingresses(ns), n.Workspace),
		c.deleteStep(session.ObjectNetworkPolicy, net.NetworkPolicies(ns), n.Workspace),
		c.deleteStep(session.ObjectSecret, core.Secrets(ns), n.Auth),
		c.deleteStep(session.ObjectSecret, core.Secrets(ns), n.TLS),
	}
	if c.opts.gateway() {
		steps = append(steps, c.withGateway(session.ObjectHTTPRoute, n.Workspace, func(gw gateway.Interface) func(context.Context) error {
			return c.deleteStep(session.ObjectHTTPRoute, gw.GatewayV1().HTTPRoutes(ns), n.Workspace)
		}))
		if c.opts.onGKE() {
			steps = append(steps,
				c.deleteStep(ObjectHealthCheckPolicy, dynamicDeleter{c, HealthCheckPolicyResource}, n.Workspace),
				c.deleteStep(ObjectBackendPolicy, dynamicDeleter{c, BackendPolicyResource}, n.Workspace))
		}
	}
	if deletePVC {
		steps = append(steps,
			c.deleteStep(session.ObjectPVC, core.PersistentVolumeClaims(ns), n.Data),
			func(ctx context.Context) error { return c.deleteJobs(ctx, id, ComponentBackup, finished) },
			// a restore fills the volume that is going: stop it, running or not
			func(ctx context.Context) error {
				return c.deleteJobs(ctx, id, ComponentRestore, func(*batchv1.Job) bool { return true })
			},
		)
	}
	return parallel(ctx, steps...)
}

// deleter is a typed client's Delete.
type deleter interface {
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// deleteStep deletes the object name of a kind in the background (its dependents go with
// it); one already gone is not an error.
func (c *Cluster) deleteStep(kind session.ObjectKind, client deleter, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		bg := metav1.DeletePropagationBackground
		err := client.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return c.kubeError("delete", kind, name, err)
	}
}

// deleteJobs deletes the session's Jobs of component that match.
func (c *Cluster) deleteJobs(ctx context.Context, id, component string, match func(*batchv1.Job) bool) error {
	sel, err := ComponentSelector(id, component)
	if err != nil {
		return err
	}
	jobs := c.cs.BatchV1().Jobs(c.opts.Namespace)
	var l []batchv1.Job
	if err := listStep(c, "Jobs", sel, jobs.List, func(l *batchv1.JobList) []batchv1.Job { return l.Items }, &l)(ctx); err != nil {
		return err
	}
	var errs []error
	for _, j := range l {
		if match(&j) {
			errs = append(errs, c.deleteStep(session.ObjectJob, jobs, j.Name)(ctx))
		}
	}
	return errors.Join(errs...)
}

// finished reports whether the Job's outcome is decided: Complete or Failed, or the
// SuccessCriteriaMet or FailureTarget conditions that precede them while its pods terminate.
func finished(j *batchv1.Job) bool {
	for _, cond := range j.Status.Conditions {
		switch cond.Type {
		case batchv1.JobComplete, batchv1.JobFailed, batchv1.JobSuccessCriteriaMet, batchv1.JobFailureTarget:
			if cond.Status == corev1.ConditionTrue {
				return true
			}
		}
	}
	return false
}
