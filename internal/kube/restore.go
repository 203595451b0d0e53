package kube

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// StartRestore creates the restore Job of the attempt unless it exists, and returns its state.
// A location that is not an archive on the backup claim is refused before any API call; a
// session without a data claim is a session.KindNotFound error.
func (c *Cluster) StartRestore(ctx context.Context, id string, attempt int, location string) (*session.Backup, error) {
	n, err := NamesFor(id)
	if err != nil {
		return nil, err
	}
	name, err := n.RestoreJob(attempt)
	if err != nil {
		return nil, err
	}
	if _, err := ArchivePath(c.opts, location); err != nil {
		return nil, err
	}
	job, err := c.startJob(ctx, name, func(ctx context.Context) (*batchv1ac.JobApplyConfiguration, error) {
		pvc, err := c.cs.CoreV1().PersistentVolumeClaims(c.opts.Namespace).Get(ctx, n.Data, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, c.notFound(id, "no PersistentVolumeClaim "+c.opts.Namespace+"/"+n.Data+" to restore into", err)
		}
		if err != nil {
			return nil, c.kubeError("get", session.ObjectPVC, n.Data, err)
		}
		req := RestoreRequest{ID: id, Attempt: attempt, Location: location, UserID: pvc.Annotations[AnnotationUserID]}
		if user := UserLabels(pvc.Labels); ValidateUserLabels(user) == nil {
			req.Labels = user
		}
		return RestoreJob(req, c.opts)
	})
	if err != nil {
		return nil, err
	}
	return c.backupOf(ctx, job)
}

// RestoreStatus reports the restore Job of the attempt: BackupMissing when there is none
// (never created, or removed after its TTL).
func (c *Cluster) RestoreStatus(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	name, err := RestoreJobName(id, attempt)
	if err != nil {
		return nil, err
	}
	return c.jobStatus(ctx, name)
}
