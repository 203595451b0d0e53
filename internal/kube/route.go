package kube

import (
	"context"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

var _ session.Cluster = (*Cluster)(nil)

// Route applies the workspace's Ingress alone (server-side apply, like Apply): its backend is
// the activator while ws.Activator (and wake on access) says so, the workspace otherwise.
func (c *Cluster) Route(ctx context.Context, ws session.Workspace) error {
	w, err := resolve(ws, c.opts)
	if err != nil {
		return err
	}
	ingresses := c.cs.NetworkingV1().Ingresses(c.opts.Namespace)
	return applyStep(c, session.ObjectIngress, w.names.Workspace, ingresses.Apply, ingress(w, c.opts))(ctx)
}
