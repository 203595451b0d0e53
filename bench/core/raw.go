package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"golang.org/x/sync/errgroup"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// raw is the floor Hyperbola is measured against: what any client needs to make the same
// workspace by hand. It server-side applies the six objects the control plane applies (built
// by the same builders, with the same options and defaults) in parallel, and scales with the
// same patch of the scale subresource; no Redis, no lock, no record. With wake on access
// (routes) it also switches the route as the control plane does: the Ingress alone, applied
// back to the workspace once the pod is Ready and to the activator at sleep.
type raw struct {
	cs       kubernetes.Interface
	opts     kube.Options
	defaults session.Options // the session core's defaults: image, storage, CPU, memory, idle timeout
	routes   bool

	mu   sync.Mutex
	made map[string]session.Workspace // by id, what create applied
}

// workspace is a new session's desired shape, as the core builds it at create.
func (r *raw) workspace(user string) (session.Workspace, error) {
	id, err := session.NewID()
	if err != nil {
		return session.Workspace{}, err
	}
	d := r.defaults
	return session.Workspace{
		ID: id, UserID: user, Image: d.Image, Storage: d.Storage, CPU: d.CPU, Memory: d.Memory,
		Replicas: 1, Password: rand.Text(), CreatedAt: time.Now().UTC(), IdleTimeout: d.IdleTimeout,
		Activator: true, // a created session is served by the activator until it runs
	}, nil
}

// create applies ws's six objects at once (field manager hyperbola, forced). Everything is
// built before the first call, as the control plane does.
func (r *raw) create(ctx context.Context, ws session.Workspace) error {
	o := r.opts
	pvc, err := kube.PersistentVolumeClaim(ws, o)
	if err != nil {
		return err
	}
	dep, err := kube.Deployment(ws, o)
	if err != nil {
		return err
	}
	svc, err := kube.Service(ws, o)
	if err != nil {
		return err
	}
	ing, err := kube.Ingress(ws, o)
	if err != nil {
		return err
	}
	np, err := kube.NetworkPolicy(ws, o)
	if err != nil {
		return err
	}
	sec, err := kube.Secret(ws, o)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.made[ws.ID] = ws
	r.mu.Unlock()
	ao := metav1.ApplyOptions{FieldManager: kube.FieldManager, Force: true}
	core, net := r.cs.CoreV1(), r.cs.NetworkingV1()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { _, err := core.PersistentVolumeClaims(o.Namespace).Apply(ctx, pvc, ao); return err })
	g.Go(func() error { _, err := r.cs.AppsV1().Deployments(o.Namespace).Apply(ctx, dep, ao); return err })
	g.Go(func() error { _, err := core.Services(o.Namespace).Apply(ctx, svc, ao); return err })
	g.Go(func() error { _, err := net.Ingresses(o.Namespace).Apply(ctx, ing, ao); return err })
	g.Go(func() error { _, err := net.NetworkPolicies(o.Namespace).Apply(ctx, np, ao); return err })
	g.Go(func() error { _, err := core.Secrets(o.Namespace).Apply(ctx, sec, ao); return err })
	if err := g.Wait(); err != nil {
		return fmt.Errorf("raw create %s: %w", ws.ID, err)
	}
	return nil
}

// scale sets session id's replicas with a merge patch of the Deployment's scale subresource.
func (r *raw) scale(ctx context.Context, id string, replicas int32) error {
	n, err := kube.NamesFor(id)
	if err != nil {
		return err
	}
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	_, err = r.cs.AppsV1().Deployments(r.opts.Namespace).Patch(ctx, n.Workspace, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: kube.FieldManager}, "scale")
	if err != nil {
		return fmt.Errorf("raw scale %s to %d: %w", id, replicas, err)
	}
	return nil
}

// route applies session id's Ingress alone, to the activator or to the workspace, as
// kube.Cluster.Route does.
func (r *raw) route(ctx context.Context, id string, activator bool) error {
	if !r.routes {
		return nil
	}
	r.mu.Lock()
	ws, ok := r.made[id]
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("raw route %s: not made here", id)
	}
	ws.Activator = activator
	ing, err := kube.Ingress(ws, r.opts)
	if err != nil {
		return err
	}
	_, err = r.cs.NetworkingV1().Ingresses(r.opts.Namespace).Apply(ctx, ing,
		metav1.ApplyOptions{FieldManager: kube.FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("raw route %s: %w", id, err)
	}
	return nil
}
