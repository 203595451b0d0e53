package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// CheckArchive reads the archive at location through with a check Job and reports what it
// holds, or what is wrong with it (Archive.Problem). It waits for the Job on a watch, bounded
// by ctx, and deletes it on every way out. What keeps the archive from being read at all (the
// Job failed or ran out of time, ctx ended, no answer) is a session.KindUnavailable error.
func (c *Cluster) CheckArchive(ctx context.Context, location string) (*session.Archive, error) {
	if _, err := ArchivePath(c.opts, location); err != nil {
		return nil, err
	}
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("kube: naming a check Job: %w", err)
	}
	name := CheckJobName(location, hex.EncodeToString(rnd[:]))
	ac, err := CheckJob(CheckRequest{Name: name, Location: location}, c.opts)
	if err != nil {
		return nil, err
	}
	obj, err := typed[batchv1.Job](ac)
	if err != nil {
		return nil, err
	}
	job, err := c.cs.BatchV1().Jobs(c.opts.Namespace).Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil {
		return nil, c.kubeError("create", session.ObjectJob, name, err)
	}
	defer c.removeJob(ctx, name)
	if job, err = c.waitJob(ctx, job); err != nil {
		return nil, err
	}
	b, err := c.backupOf(ctx, job)
	if err != nil {
		return nil, err
	}
	if b.Phase == session.BackupFailed {
		return nil, unavailable(fmt.Sprintf("kube: the check Job %s/%s of %s failed: %s", c.opts.Namespace, name, location, b.Reason), nil)
	}
	pods, err := c.jobPods(ctx, name)
	if err != nil {
		return nil, err
	}
	a, err := parseCheckReport(successMessage(pods))
	if err != nil {
		return nil, unavailable(fmt.Sprintf("kube: the check Job %s/%s of %s", c.opts.Namespace, name, location), err)
	}
	return a, nil
}

// checkReport is the check Job's answer (checkscript.go).
type checkReport struct {
	Problem      session.ArchiveProblem `json:"problem"`
	Detail       string                 `json:"detail"`
	Bytes        int64                  `json:"bytes"`
	Files        int64                  `json:"files"`
	Uncompressed int64                  `json:"uncompressed"`
}

// parseCheckReport reads a check Job's termination message.
func parseCheckReport(msg string) (*session.Archive, error) {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return nil, fmt.Errorf("it answered nothing")
	}
	var r checkReport
	if err := json.Unmarshal([]byte(msg), &r); err != nil {
		return nil, fmt.Errorf("its answer %q is not a report: %w", firstLine(msg), err)
	}
	switch r.Problem {
	case session.ArchiveOK, session.ArchiveMissing, session.ArchiveNotZip, session.ArchiveCorrupt:
	default:
		return nil, fmt.Errorf("its answer names an unknown problem %q", r.Problem)
	}
	if r.Bytes < 0 || r.Files < 0 || r.Uncompressed < 0 {
		return nil, fmt.Errorf("its answer %q has a negative count", firstLine(msg))
	}
	return &session.Archive{Problem: r.Problem, Detail: strings.TrimSpace(r.Detail), Bytes: r.Bytes, Files: r.Files, Uncompressed: r.Uncompressed}, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// waitJob waits until job is finished (Complete or Failed, or the conditions that precede
// them) and returns it as it then is: on a watch from the version it was read at, which is
// started again (from a fresh read) when the API server ends it.
func (c *Cluster) waitJob(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	jobs := c.cs.BatchV1().Jobs(c.opts.Namespace)
	name := job.Name
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	for !finished(job) {
		w, err := jobs.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: job.ResourceVersion})
		switch {
		case ctx.Err() != nil:
			if err == nil {
				w.Stop()
			}
			return nil, c.waitEnded(ctx, name)
		case apierrors.IsResourceExpired(err) || apierrors.IsGone(err): // read it again below
		case err != nil:
			return nil, c.kubeError("watch", session.ObjectJob, name, err)
		default:
			next, err := nextFinished(ctx, w, job)
			w.Stop()
			switch {
			case ctx.Err() != nil:
				return nil, c.waitEnded(ctx, name)
			case err != nil:
				return nil, unavailable(fmt.Sprintf("kube: Job %s/%s", c.opts.Namespace, name), err)
			case next != nil:
				job = next
				continue
			}
		}
		// the watch ended (or expired): read the Job again, and watch on from there
		if job, err = jobs.Get(ctx, name, metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, unavailable(fmt.Sprintf("kube: Job %s/%s was deleted before it finished", c.opts.Namespace, name), err)
			}
			return nil, c.kubeError("get", session.ObjectJob, name, err)
		}
	}
	return job, nil
}

// nextFinished reads w until the Job is finished (and returns it), the watch ends (nil, nil)
// or ctx does.
func nextFinished(ctx context.Context, w watch.Interface, job *batchv1.Job) (*batchv1.Job, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, nil
			}
			switch ev.Type {
			case watch.Error:
				return nil, nil // expired: the caller reads the Job again
			case watch.Deleted:
				return nil, fmt.Errorf("it was deleted before it finished")
			}
			if j, ok := ev.Object.(*batchv1.Job); ok && j.Name == job.Name && finished(j) {
				return j, nil
			}
		}
	}
}

// waitEnded is the error of a wait that ctx ended.
func (c *Cluster) waitEnded(ctx context.Context, name string) error {
	return unavailable(fmt.Sprintf("kube: waiting for Job %s/%s", c.opts.Namespace, name), ctx.Err())
}

// unavailable is a session.KindUnavailable error.
func unavailable(msg string, err error) error {
	return &session.Error{Kind: session.KindUnavailable, Message: msg, Err: err}
}

// removeJob deletes the Job name and its pods in the background, even once ctx ended (within
// a bound of its own); a Job it cannot delete goes after its TTL.
func (c *Cluster) removeJob(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = c.deleteStep(session.ObjectJob, c.cs.BatchV1().Jobs(c.opts.Namespace), name)(ctx)
}
