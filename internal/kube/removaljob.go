package kube

import (
	"cmp"
	"fmt"
	"maps"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
)

// PruneRequest is one removal of archives.
type PruneRequest struct {
	// Name is the Job's (the session core names a removal: a DNS label).
	Name string
	// Locations are the archives to remove, each pvc://<backup pvc>/<session id>/<file>.zip.
	Locations []string
}

// PruneJob builds the Job that removes the archives at r.Locations from the backup claim,
// mounted read-write, and each session directory it empties (removalscript.go). The paths reach
// the script one per line in ARCHIVES, each checked (ArchivePath) here: no other path can. It
// belongs to no session: ArchiveLabels(ComponentPrune). One try, the backup's deadline and TTL.
func PruneJob(r PruneRequest, o Options) (*batchv1ac.JobApplyConfiguration, error) {
	if errs := validation.IsDNS1123Label(r.Name); len(errs) > 0 {
		return nil, fmt.Errorf("prune job %q: %s", r.Name, strings.Join(errs, "; "))
	}
	if len(r.Locations) == 0 {
		return nil, fmt.Errorf("prune job %s: no archive to remove", r.Name)
	}
	paths := make([]string, len(r.Locations))
	for i, l := range r.Locations {
		rel, err := ArchivePath(o, l)
		if err != nil {
			return nil, fmt.Errorf("prune job %s: %w", r.Name, err)
		}
		paths[i] = rel
	}
	if err := validateBackupPodLabels(o.BackupPodLabels); err != nil {
		return nil, err
	}
	jobLabels := ArchiveLabels(ComponentPrune)
	podLabels := maps.Clone(jobLabels)
	maps.Copy(podLabels, o.BackupPodLabels)
	ctr := toolContainer(o, "prune", pruneScript,
		map[string]string{"ARCHIVES": strings.Join(paths, "\n")}, backupMount(false))
	pod := toolPod(o, ctr, backupVolume(o, false))
	return toolJob(r.Name, o, jobLabels, podLabels, nil,
		cmp.Or(o.BackupDeadline, DefaultBackupDeadline), cmp.Or(o.BackupTTL, DefaultBackupTTL), pod), nil
}
