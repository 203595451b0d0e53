package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Scale sets the Deployment's replicas with a merge patch of its scale subresource: no read,
// so no race with the Deployment controller's writes.
func (c *Cluster) Scale(ctx context.Context, id string, replicas int32) error {
	n, err := NamesFor(id)
	if err != nil {
		return err
	}
	if err := checkReplicas(replicas); err != nil {
		return err
	}
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	_, err = c.cs.AppsV1().Deployments(c.opts.Namespace).Patch(ctx, n.Workspace, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager}, "scale")
	if apierrors.IsNotFound(err) {
		return c.notFound(id, "no Deployment "+c.opts.Namespace+"/"+n.Workspace, err)
	}
	return c.kubeError("scale", session.ObjectDeployment, n.Workspace, err)
}
