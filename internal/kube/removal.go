package kube

import (
	"context"

	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// RemoveArchives creates the prune Job name unless it exists, and returns its state as
// BackupStatus does. The name and every location are checked before any API call.
func (c *Cluster) RemoveArchives(ctx context.Context, name string, locations []string) (*session.Backup, error) {
	ac, err := PruneJob(PruneRequest{Name: name, Locations: locations}, c.opts)
	if err != nil {
		return nil, err
	}
	job, err := c.startJob(ctx, name, func(context.Context) (*batchv1ac.JobApplyConfiguration, error) { return ac, nil })
	if err != nil {
		return nil, err
	}
	return c.backupOf(ctx, job)
}
