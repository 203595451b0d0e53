package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// This file holds what the Jobs that work on the backup volume share: the restore Job
// (restorejob.go), the check Job (checkjob.go) and the prune Job (removaljob.go) run the
// backup image like the backup Job, as code-server's user, with the same restricted security.

// ArchivePath returns where the archive at location is on the backup volume, relative to its
// root ("<session id>/<session id>-<UTC time>.zip"): location must be
// pvc://<o.BackupPVC>/<session id>/<session id>-<UTC time>.zip exactly. Nothing else reaches a
// Job, so no path a Job is given can leave the session's directory.
func ArchivePath(o Options, location string) (string, error) {
	rest, ok := strings.CutPrefix(location, "pvc://"+o.BackupPVC+"/")
	if !ok || session.BackupIDOf(location) == "" {
		return "", fmt.Errorf("kube: %q is not an archive on the backup claim (pvc://%s/<session id>/<session id>-<UTC time>.zip)",
			location, o.BackupPVC)
	}
	return rest, nil
}

// unzipPath is Info-ZIP's unzip in the backup image. The scripts name it by its path: the
// image's /bin/sh is busybox, which runs its own applet for a bare "unzip" whatever PATH says,
// and busybox's unzip restores neither symlinks nor modes, and has no -Z.
const unzipPath = "/usr/bin/unzip"

// scriptRun is the shell functions every Job script uses to run its long steps: in the
// background, waited for, so a stop (the Job's deadline) runs the script's trap at once (a
// shell runs its trap only between commands). The script sets child="" first.
const scriptRun = `# run CMD...: CMD in the background, waited for; run_from FILE CMD...: the same with stdin
# from FILE (a background command's stdin is /dev/null unless it is redirected itself)
run() { run_from /dev/null "$@"; }
run_from() {
  in=$1
  shift
  "$@" < "$in" &
  child=$!
  rc=0
  wait "$child" || rc=$?
  child=""
  return "$rc"
}
`

// toolContainer is the one container of a Job on the backup volume: the backup image running
// script with env, as code-server's user, its root file system read-only (it writes to its
// volumes and /tmp alone), its termination message the script's (or its log's tail when it
// dies without writing one).
func toolContainer(o Options, name, script string, env map[string]string, mounts ...*corev1ac.VolumeMountApplyConfiguration) *corev1ac.ContainerApplyConfiguration {
	ctr := corev1ac.Container().
		WithName(name).
		WithImage(o.BackupImage).
		WithCommand("/bin/sh", "-c", script)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		ctr.WithEnv(corev1ac.EnvVar().WithName(k).WithValue(env[k]))
	}
	return ctr.
		WithVolumeMounts(mounts...).
		WithVolumeMounts(corev1ac.VolumeMount().WithName("tmp").WithMountPath("/tmp")).
		WithResources(backupResources()).
		WithTerminationMessagePolicy(corev1.TerminationMessageFallbackToLogsOnError).
		WithSecurityContext(restrictedContainer().WithReadOnlyRootFilesystem(true))
}

// toolPod is the pod spec of a Job on the backup volume: one try, no service account token,
// placed as workspace pods are (Options.NodeSelector, Tolerations), with a scratch /tmp.
func toolPod(o Options, ctr *corev1ac.ContainerApplyConfiguration, vols ...*corev1ac.VolumeApplyConfiguration) *corev1ac.PodSpecApplyConfiguration {
	return o.place(corev1ac.PodSpec().
		WithRestartPolicy(corev1.RestartPolicyNever).
		WithAutomountServiceAccountToken(false).
		WithEnableServiceLinks(false).
		WithTerminationGracePeriodSeconds(BackupGracePeriod).
		WithSecurityContext(restrictedPod())).
		WithContainers(ctr).
		WithVolumes(vols...).
		WithVolumes(corev1ac.Volume().WithName("tmp").WithEmptyDir(corev1ac.EmptyDirVolumeSource()))
}

// backupVolume is the backup claim as the volume "backups", read-only or not.
func backupVolume(o Options, readOnly bool) *corev1ac.VolumeApplyConfiguration {
	src := corev1ac.PersistentVolumeClaimVolumeSource().WithClaimName(o.BackupPVC)
	if readOnly {
		src.WithReadOnly(true)
	}
	return corev1ac.Volume().WithName("backups").WithPersistentVolumeClaim(src)
}

// backupMount mounts the volume "backups" at BackupDir, read-only or not.
func backupMount(readOnly bool) *corev1ac.VolumeMountApplyConfiguration {
	m := corev1ac.VolumeMount().WithName("backups").WithMountPath(BackupDir)
	if readOnly {
		m.WithReadOnly(true)
	}
	return m
}

// toolJob is a Job of one try (backoffLimit 0: a retry is a new Job) that runs pod, bounded by
// deadline and removed ttl after it finished.
func toolJob(name string, o Options, jobLabels, podLabels, ann map[string]string, deadline, ttl time.Duration,
	pod *corev1ac.PodSpecApplyConfiguration) *batchv1ac.JobApplyConfiguration {
	tmpl := corev1ac.PodTemplateSpec().WithLabels(podLabels).WithSpec(pod)
	job := batchv1ac.Job(name, o.Namespace).WithLabels(jobLabels)
	if len(ann) > 0 {
		tmpl.WithAnnotations(ann)
		job.WithAnnotations(ann)
	}
	return job.WithSpec(batchv1ac.JobSpec().
		WithBackoffLimit(0).
		WithActiveDeadlineSeconds(int64(deadline / time.Second)).
		WithTTLSecondsAfterFinished(int32(ttl / time.Second)).
		WithTemplate(tmpl))
}

// startJob returns the Job name when it exists, else creates the one build makes (build may
// read the cluster: it runs only when the Job is missing). Two callers racing both get the
// one Job.
func (c *Cluster) startJob(ctx context.Context, name string,
	build func(context.Context) (*batchv1ac.JobApplyConfiguration, error)) (*batchv1.Job, error) {
	jobs := c.cs.BatchV1().Jobs(c.opts.Namespace)
	job, err := jobs.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return job, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, c.kubeError("get", session.ObjectJob, name, err)
	}
	ac, err := build(ctx)
	if err != nil {
		return nil, err
	}
	obj, err := typed[batchv1.Job](ac)
	if err != nil {
		return nil, err
	}
	job, err = jobs.Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) { // another caller created it first: report that one
		job, err = jobs.Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, c.kubeError("create", session.ObjectJob, name, err)
	}
	return job, nil
}

// jobStatus reports the Job name as backupOf does: BackupMissing when there is none (never
// created, or removed after its TTL).
func (c *Cluster) jobStatus(ctx context.Context, name string) (*session.Backup, error) {
	job, err := c.rd.BatchV1().Jobs(c.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &session.Backup{Phase: session.BackupMissing}, nil
	}
	if err != nil {
		return nil, c.kubeError("get", session.ObjectJob, name, err)
	}
	return c.backupOf(ctx, job)
}

// jobPods lists the pods of the Job name.
func (c *Cluster) jobPods(ctx context.Context, name string) ([]corev1.Pod, error) {
	sel := labels.SelectorFromSet(labels.Set{batchv1.JobNameLabel: name}).String()
	pods, err := c.rd.CoreV1().Pods(c.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, c.listError("Pods of Job", name, err)
	}
	return pods.Items, nil
}

// successMessage is the termination message of the container that exited 0 among pods ("" when
// none did, or it wrote none).
func successMessage(pods []corev1.Pod) string {
	for _, p := range pods {
		for _, s := range containerStatuses(p) {
			if t := s.State.Terminated; t != nil && t.ExitCode == 0 && strings.TrimSpace(t.Message) != "" {
				return t.Message
			}
		}
	}
	return ""
}

// messageValue reads key's integer from a termination message of "key=value" lines; false when
// it has none.
func messageValue(msg, key string) (int64, bool) {
	for line := range strings.Lines(msg) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
