package kube

import (
	"cmp"
	"fmt"
	"maps"

	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// RestoreRequest is one restore attempt of a session: its (new, empty) volume is filled from
// the archive at Location.
type RestoreRequest struct {
	ID       string
	Attempt  int
	Location string // pvc://<backup pvc>/<session id>/<session id>-<UTC time>.zip
	// UserID and Labels are copied from the session's claim onto the Job and its pod.
	UserID string
	Labels map[string]string
}

// RestoreJob builds the restore Job of an attempt, vs-code-<id>-restore-<attempt>: it mounts
// the session's claim read-write at /app and the backup claim READ-ONLY at /backups, and
// unzips the archive into /app as code-server's user, so the files come back as that user's
// (restorescript.go says how, and what a failure leaves: an empty volume). The annotation
// hyperbola.dev/restore-from names the archive. One try, the backup's deadline and TTL.
func RestoreJob(r RestoreRequest, o Options) (*batchv1ac.JobApplyConfiguration, error) {
	n, err := NamesFor(r.ID)
	if err != nil {
		return nil, err
	}
	name, err := n.RestoreJob(r.Attempt)
	if err != nil {
		return nil, err
	}
	rel, err := ArchivePath(o, r.Location)
	if err != nil {
		return nil, fmt.Errorf("restore job %s: %w", name, err)
	}
	jobLabels, err := Labels(r.ID, ComponentRestore, r.Labels)
	if err != nil {
		return nil, err
	}
	if err := validateBackupPodLabels(o.BackupPodLabels); err != nil {
		return nil, err
	}
	// the backup pods' extra labels too: what a test does to make backups fail, it does to
	// restores
	podLabels := maps.Clone(jobLabels)
	maps.Copy(podLabels, o.BackupPodLabels)
	ann := map[string]string{AnnotationRestoreFrom: r.Location}
	if r.UserID != "" {
		ann[AnnotationUserID] = r.UserID
	}
	ctr := toolContainer(o, "restore", restoreScript,
		map[string]string{"ARCHIVE": rel, "LOCATION": r.Location},
		corev1ac.VolumeMount().WithName("data").WithMountPath(WorkspaceDir),
		backupMount(true))
	pod := toolPod(o, ctr,
		corev1ac.Volume().WithName("data").
			WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().WithClaimName(n.Data)),
		backupVolume(o, true))
	return toolJob(name, o, jobLabels, podLabels, ann,
		cmp.Or(o.BackupDeadline, DefaultBackupDeadline), cmp.Or(o.BackupTTL, DefaultBackupTTL), pod), nil
}
