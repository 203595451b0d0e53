package kube

import (
	"cmp"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
)

// The backup Job's decisions.
const (
	// DefaultBackupDeadline bounds a backup Job's run (activeDeadlineSeconds).
	DefaultBackupDeadline = 30 * time.Minute
	// DefaultBackupTTL is how long a finished backup Job is kept (ttlSecondsAfterFinished).
	DefaultBackupTTL = 5 * time.Minute
	// BackupDir is where the backup volume is mounted in the backup Job.
	BackupDir = "/backups"
	// BackupGracePeriod is how long a backup pod has, once told to stop (its deadline passed),
	// to kill zip and remove its temporary archive before it is killed.
	BackupGracePeriod int64 = 30
)

// BackupRequest is one backup attempt of a session.
type BackupRequest struct {
	ID      string
	Attempt int
	// Time names the zip (UTC, to the second).
	Time time.Time
	// UserID and Labels are copied from the session's claim onto the Job and its pod.
	UserID string
	Labels map[string]string
}

// BackupFile is the zip's file name: <id>-<UTC time, e.g. 20261126T020304Z>.zip.
func BackupFile(id string, t time.Time) string {
	return id + "-" + t.UTC().Format("20060102T150405Z") + ".zip"
}

// BackupLocation is where the backup of session id taken at t is written:
// pvc://<backup pvc>/<id>/<file>.zip.
func BackupLocation(o Options, id string, t time.Time) string {
	return "pvc://" + o.BackupPVC + "/" + id + "/" + BackupFile(id, t)
}

// BackupJob builds the backup Job of an attempt, vs-code-<id>-backup-<attempt>: it mounts the
// session's claim READ-ONLY at /app and the backup claim at /backups, and writes
// /backups/<id>/<id>-<UTC time>.zip; the annotation hyperbola.dev/backup-location records
// where. One try (backoffLimit 0: a retry is a new attempt), a deadline, and the Job is
// removed 5 minutes after it finished.
func BackupJob(b BackupRequest, o Options) (*batchv1ac.JobApplyConfiguration, error) {
	n, err := NamesFor(b.ID)
	if err != nil {
		return nil, err
	}
	name, err := n.BackupJob(b.Attempt)
	if err != nil {
		return nil, err
	}
	if b.Time.IsZero() {
		return nil, fmt.Errorf("backup job %s: no time to name the zip", name)
	}
	jobLabels, err := Labels(b.ID, ComponentBackup, b.Labels)
	if err != nil {
		return nil, err
	}
	podLabels := maps.Clone(jobLabels)
	if err := validateBackupPodLabels(o.BackupPodLabels); err != nil {
		return nil, err
	}
	maps.Copy(podLabels, o.BackupPodLabels)
	workspacePods, err := SelectorLabels(b.ID, ComponentWorkspace)
	if err != nil {
		return nil, err
	}
	location := BackupLocation(o, b.ID, b.Time)
	ann := map[string]string{AnnotationBackupLocation: location}
	if b.UserID != "" {
		ann[AnnotationUserID] = b.UserID
	}
	deadline := cmp.Or(o.BackupDeadline, DefaultBackupDeadline)
	ttl := cmp.Or(o.BackupTTL, DefaultBackupTTL)

	backup := corev1ac.Container().
		WithName("backup").
		WithImage(o.BackupImage).
		WithCommand("/bin/sh", "-c", backupScript).
		WithEnv(
			corev1ac.EnvVar().WithName("SESSION_ID").WithValue(b.ID),
			corev1ac.EnvVar().WithName("BACKUP_FILE").WithValue(BackupFile(b.ID, b.Time)),
			corev1ac.EnvVar().WithName("BACKUP_LOCATION").WithValue(location),
		).
		WithVolumeMounts(
			corev1ac.VolumeMount().WithName("data").WithMountPath(WorkspaceDir).WithReadOnly(true),
			corev1ac.VolumeMount().WithName("backups").WithMountPath(BackupDir),
			corev1ac.VolumeMount().WithName("tmp").WithMountPath("/tmp"),
		).
		WithResources(backupResources()).
		WithTerminationMessagePolicy(corev1.TerminationMessageFallbackToLogsOnError).
		WithSecurityContext(restrictedContainer().WithReadOnlyRootFilesystem(true))

	podSpec := o.place(corev1ac.PodSpec().
		WithRestartPolicy(corev1.RestartPolicyNever).
		WithAutomountServiceAccountToken(false).
		WithEnableServiceLinks(false).
		WithTerminationGracePeriodSeconds(BackupGracePeriod).
		WithSecurityContext(restrictedPod())).
		// The claim is ReadWriteOnce: if the workspace still runs, share its node.
		WithAffinity(corev1ac.Affinity().WithPodAffinity(corev1ac.PodAffinity().
			WithPreferredDuringSchedulingIgnoredDuringExecution(corev1ac.WeightedPodAffinityTerm().
				WithWeight(100).
				WithPodAffinityTerm(corev1ac.PodAffinityTerm().
					WithTopologyKey(corev1.LabelHostname).
					WithLabelSelector(metav1ac.LabelSelector().WithMatchLabels(workspacePods)))))).
		WithContainers(backup).
		WithVolumes(
			corev1ac.Volume().WithName("data").
				WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().
					WithClaimName(n.Data).WithReadOnly(true)),
			corev1ac.Volume().WithName("backups").
				WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().WithClaimName(o.BackupPVC)),
			corev1ac.Volume().WithName("tmp").WithEmptyDir(corev1ac.EmptyDirVolumeSource()),
		)

	return batchv1ac.Job(name, o.Namespace).
		WithLabels(jobLabels).
		WithAnnotations(ann).
		WithSpec(batchv1ac.JobSpec().
			WithBackoffLimit(0).
			WithActiveDeadlineSeconds(int64(deadline / time.Second)).
			WithTTLSecondsAfterFinished(int32(ttl / time.Second)).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(podLabels).
				WithAnnotations(ann).
				WithSpec(podSpec))), nil
}

func backupResources() *corev1ac.ResourceRequirementsApplyConfiguration {
	return corev1ac.ResourceRequirements().
		WithRequests(corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("64Mi"),
		}).
		WithLimits(corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")})
}
