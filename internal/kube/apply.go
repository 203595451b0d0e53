package kube

import (
	"context"
	"fmt"
	"log/slog"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Apply creates or updates the workspace's six objects at once. The PVC, Deployment, Service,
// route (Route's: the Ingress, or in gateway mode the HTTPRoute, GKE's policies on a GKE
// Gateway, and an Ingress kept only while Options.KeepIngress), NetworkPolicy and Secret are
// server-side applied (field manager "hyperbola", forced), one request each; an existing
// Secret keeps its password (applySecret). Everything is built before the first API call, so
// bad input changes nothing.
func (c *Cluster) Apply(ctx context.Context, ws session.Workspace) error {
	o := c.opts
	w, err := resolve(ws, o)
	if err != nil {
		return err
	}
	n, core, net := w.names, c.cs.CoreV1(), c.cs.NetworkingV1()
	steps := []func(context.Context) error{
		c.warm(w, c.applyClaim(persistentVolumeClaim(w, o), n.Data)),
		applyStep(c, session.ObjectDeployment, n.Workspace, c.cs.AppsV1().Deployments(o.Namespace).Apply, deployment(w, o)),
		applyStep(c, session.ObjectService, n.Workspace, core.Services(o.Namespace).Apply, service(w, o)),
		applyStep(c, session.ObjectNetworkPolicy, n.Workspace, net.NetworkPolicies(o.Namespace).Apply, networkPolicy(w, o)),
		c.applySecret(w),
	}
	steps = append(steps, c.routeSteps(w)...)
	return parallel(ctx, append(steps, c.gatewaySteps(w)...)...)
}

// applyStep server-side applies one object, ac named name, with a typed client's Apply (field
// manager "hyperbola", forced).
func applyStep[AC, T any](c *Cluster, kind session.ObjectKind, name string,
	apply func(context.Context, AC, metav1.ApplyOptions) (T, error), ac AC) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		return c.kubeError("apply", kind, name, err)
	}
}

// applyClaim applies the data claim: a refusal is the workspace's storage field, since the
// only field of a bound claim that may change is its size, and only up.
func (c *Cluster) applyClaim(pvc *corev1ac.PersistentVolumeClaimApplyConfiguration, name string) func(context.Context) error {
	apply := applyStep(c, session.ObjectPVC, name, c.cs.CoreV1().PersistentVolumeClaims(c.opts.Namespace).Apply, pvc)
	return func(ctx context.Context) error {
		err := apply(ctx)
		if apierrors.IsInvalid(err) {
			return &session.Error{Kind: session.KindInvalid, Field: "storage",
				Message: fmt.Sprintf("kube: the claim %s/%s refused the change (storage can grow, never shrink)", c.opts.Namespace, name), Err: err}
		}
		return err
	}
}

// warm runs apply, the data claim's step, after reserving a warm volume for the claim when
// the workspace's volume is new and the pool is on (claimWarmVolume). A pool that has none,
// or cannot be read, leaves the claim to its provisioner: the cold path, as without a pool.
func (c *Cluster) warm(w workspace, apply func(context.Context) error) func(context.Context) error {
	if !w.NewVolume || c.opts.WarmVolumes <= 0 {
		return apply
	}
	return func(ctx context.Context) error {
		pv, err := c.claimWarmVolume(ctx, w)
		switch {
		case err != nil:
			slog.WarnContext(ctx, "claiming a warm volume; the claim is provisioned instead", "id", w.ID, "err", err)
		case pv == "":
			slog.DebugContext(ctx, "no warm volume free; the claim is provisioned", "id", w.ID)
		default:
			slog.DebugContext(ctx, "claimed a warm volume", "id", w.ID, "volume", pv)
		}
		return apply(ctx)
	}
}

// applySecret applies the whole Secret with the workspace's password, one request. The Secret
// is immutable, so an existing one with other data (a re-apply of a create that drew a fresh
// password) is refused as invalid and keeps its password; its labels and annotations are then
// applied with the data it holds, read first. Without a password (w.Password ""), the Secret
// must exist already: it is read, and applied back with the data it holds.
func (c *Cluster) applySecret(w workspace) func(context.Context) error {
	o, name := c.opts, w.names.Auth
	secrets := c.cs.CoreV1().Secrets(o.Namespace)
	apply := func(ctx context.Context, data map[string][]byte) error {
		_, err := secrets.Apply(ctx, secret(w, o, data), metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		return err
	}
	return func(ctx context.Context) error {
		var refused error
		if w.Password != "" {
			err := apply(ctx, secretData(w, o))
			if !apierrors.IsInvalid(err) {
				return c.kubeError("apply", session.ObjectSecret, name, err)
			}
			refused = err
		}
		cur, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && refused != nil {
			return c.kubeError("apply", session.ObjectSecret, name, refused) // refused for another reason than its data
		}
		if apierrors.IsNotFound(err) {
			return &session.Error{Kind: session.KindInvalid, Field: "password",
				Message: fmt.Sprintf("kube: the Secret %s/%s does not exist: a password is needed to create it", o.Namespace, name), Err: err}
		}
		if err != nil {
			return c.kubeError("get", session.ObjectSecret, name, err)
		}
		return c.kubeError("apply", session.ObjectSecret, name, apply(ctx, cur.Data))
	}
}
