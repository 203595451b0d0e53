package kube

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// StartBackup creates the backup Job of the attempt unless it exists, and returns its state.
// The zip is named after the time the Job is created; the Job records where it goes. It
// returns a session.KindNotFound error when the session has no data claim to back up.
func (c *Cluster) StartBackup(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	n, err := NamesFor(id)
	if err != nil {
		return nil, err
	}
	name, err := n.BackupJob(attempt)
	if err != nil {
		return nil, err
	}
	job, err := c.startJob(ctx, name, func(ctx context.Context) (*batchv1ac.JobApplyConfiguration, error) {
		pvc, err := c.cs.CoreV1().PersistentVolumeClaims(c.opts.Namespace).Get(ctx, n.Data, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, c.notFound(id, "no PersistentVolumeClaim "+c.opts.Namespace+"/"+n.Data+" to back up", err)
		}
		if err != nil {
			return nil, c.kubeError("get", session.ObjectPVC, n.Data, err)
		}
		req := BackupRequest{ID: id, Attempt: attempt, Time: c.now(), UserID: pvc.Annotations[AnnotationUserID]}
		if user := UserLabels(pvc.Labels); ValidateUserLabels(user) == nil {
			req.Labels = user
		}
		return BackupJob(req, c.opts)
	})
	if err != nil {
		return nil, err
	}
	return c.backupOf(ctx, job)
}

// BackupStatus reports the backup Job of the attempt: BackupMissing when there is none
// (never created, or removed after its TTL).
func (c *Cluster) BackupStatus(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	name, err := BackupJobName(id, attempt)
	if err != nil {
		return nil, err
	}
	return c.jobStatus(ctx, name)
}

// backupOf reads the outcome of a backup, restore or prune Job from its conditions; a failure's
// reason is the Job's condition and the failed container's termination message. A backup's
// success carries the archive's size, from its termination message.
func (c *Cluster) backupOf(ctx context.Context, job *batchv1.Job) (*session.Backup, error) {
	b := &session.Backup{Phase: session.BackupRunning, Location: job.Annotations[AnnotationBackupLocation]}
	var failed *batchv1.JobCondition
	for i, cond := range job.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			b.Phase = session.BackupSucceeded
			if job.Labels[LabelComponent] == ComponentBackup {
				pods, err := c.jobPods(ctx, job.Name)
				if err != nil {
					return nil, err
				}
				// the archive's size, as the backup measured it (none from a Job before
				// it said, nor on kwok's fake nodes)
				b.Bytes, _ = messageValue(successMessage(pods), "bytes")
			}
			return b, nil
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			if failed == nil || cond.Type == batchv1.JobFailed {
				failed = &job.Status.Conditions[i]
			}
		}
	}
	if failed == nil {
		return b, nil
	}
	b.Phase = session.BackupFailed
	pods, err := c.jobPods(ctx, job.Name)
	if err != nil {
		return nil, err
	}
	// What the backup said (it names the files it could not read, the room it lacked) comes
	// first; the Job's condition (DeadlineExceeded, BackoffLimitExceeded) after it.
	b.Reason = joinNonEmpty("; ", terminations(pods), joinNonEmpty(": ", failed.Reason, failed.Message))
	if b.Reason == "" {
		b.Reason = "the " + cmp.Or(job.Labels[LabelComponent], "backup") + " Job failed"
	}
	return b, nil
}

// terminations describes the containers of pods that ended in error.
func terminations(pods []corev1.Pod) string {
	var out []string
	for _, p := range pods {
		for _, s := range containerStatuses(p) {
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
				exit := fmt.Sprintf("container %s exited %d (%s)", s.Name, t.ExitCode, t.Reason)
				if msg := strings.TrimSpace(t.Message); msg != "" {
					exit = msg + " [" + exit + "]"
				}
				out = append(out, exit)
			} else if w := s.State.Waiting; w != nil && problemReasons[w.Reason] {
				out = append(out, fmt.Sprintf("container %s: %s", s.Name, joinNonEmpty(": ", w.Reason, w.Message)))
			}
		}
		if len(out) == 0 && p.Status.Phase == corev1.PodFailed {
			out = append(out, "pod "+p.Name+" failed: "+joinNonEmpty(": ", p.Status.Reason, p.Status.Message))
		}
	}
	return strings.Join(out, "; ")
}
