package kube

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// These tests play the Job controller and the kubelet by hand on the fake clientset: a Job's
// conditions and its pod's termination message are what the cluster would report.

const (
	archiveA = "pvc://hyperbola-backups/zx98wv76/zx98wv76-20261127T080910Z.zip"
	archiveB = "pvc://hyperbola-backups/zx98wv76/zx98wv76-20261128T000000Z.zip"
)

// ended returns job with its outcome condition, and the pod that ran it, its container ended
// with exit and msg as its termination message.
func ended(job *batchv1.Job, cond batchv1.JobConditionType, reason string, exit int32, msg string) (*batchv1.Job, *corev1.Pod) {
	j := job.DeepCopy()
	j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: cond, Status: corev1.ConditionTrue, Reason: reason})
	phase := corev1.PodSucceeded
	if exit != 0 {
		phase = corev1.PodFailed
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-x1", Namespace: j.Namespace, Labels: map[string]string{batchv1.JobNameLabel: j.Name}},
		Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{
			Name:  j.Spec.Template.Spec.Containers[0].Name,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Reason: "Completed", Message: msg}},
		}}},
	}
	return j, pod
}

// finish makes the Job name end as ended says, in the fake's store.
func finish(t *testing.T, cs *fake.Clientset, ns, name string, cond batchv1.JobConditionType, reason string, exit int32, msg string) {
	t.Helper()
	ctx := context.Background()
	job, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j, pod := ended(job, cond, reason, exit, msg)
	if _, err := cs.BatchV1().Jobs(ns).UpdateStatus(ctx, j, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func dataClaim(ns, id string) *corev1.PersistentVolumeClaim {
	n, _ := NamesFor(id)
	l, _ := Labels(id, ComponentWorkspace, map[string]string{"team": "web"})
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: n.Data, Namespace: ns, Labels: l,
		Annotations: map[string]string{AnnotationUserID: "alice@example.com"}}}
}

func creates(cs *fake.Clientset, resource string) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

func TestStartRestore(t *testing.T) {
	ctx := context.Background()
	o := testOptions()
	cs := fake.NewClientset()
	c := NewCluster(cs, o)

	// No volume yet: not found, nothing created.
	if _, err := c.StartRestore(ctx, "ab12cd34", 1, archiveA); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("without a claim: %v", err)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(o.Namespace).Create(ctx, dataClaim(o.Namespace, "ab12cd34"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := c.RestoreStatus(ctx, "ab12cd34", 1); err != nil || b.Phase != session.BackupMissing {
		t.Fatalf("before: %+v, %v", b, err)
	}
	b, err := c.StartRestore(ctx, "ab12cd34", 1, archiveA)
	if err != nil || b.Phase != session.BackupRunning || b.Location != "" {
		t.Fatalf("started: %+v, %v", b, err)
	}
	job, err := cs.BatchV1().Jobs(o.Namespace).Get(ctx, "vs-code-ab12cd34-restore-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if job.Labels[LabelComponent] != ComponentRestore || job.Labels["team"] != "web" ||
		job.Annotations[AnnotationUserID] != "alice@example.com" || job.Annotations[AnnotationRestoreFrom] != archiveA {
		t.Errorf("job metadata %v %v", job.Labels, job.Annotations)
	}
	// Started again: the same Job.
	if b, err := c.StartRestore(ctx, "ab12cd34", 1, archiveA); err != nil || b.Phase != session.BackupRunning || creates(cs, "jobs") != 1 {
		t.Errorf("again: %+v, %v, %d creates", b, err, creates(cs, "jobs"))
	}

	finish(t, cs, o.Namespace, job.Name, batchv1.JobFailed, "BackoffLimitExceeded", 1,
		"unzip exited 2: /app/big.bin  bad CRC b9a7c398  (should be 060730c5)")
	b, err = c.RestoreStatus(ctx, "ab12cd34", 1)
	if err != nil || b.Phase != session.BackupFailed || !strings.Contains(b.Reason, "bad CRC") || !strings.Contains(b.Reason, "BackoffLimitExceeded") {
		t.Errorf("failed: %+v, %v", b, err)
	}

	if _, err := c.StartRestore(ctx, "ab12cd34", 2, archiveA); err != nil {
		t.Fatal(err)
	}
	finish(t, cs, o.Namespace, "vs-code-ab12cd34-restore-2", batchv1.JobComplete, "", 0, "bytes=104857600\nfiles=12\n")
	if b, err := c.RestoreStatus(ctx, "ab12cd34", 2); err != nil || b.Phase != session.BackupSucceeded || b.Reason != "" || b.Bytes != 0 {
		t.Errorf("succeeded: %+v, %v", b, err)
	}

	// A location that is not an archive on the backup claim: refused before any call.
	calls := len(cs.Actions())
	for _, bad := range []string{"pvc://other/zx98wv76/zx98wv76-20261127T080910Z.zip", "pvc://hyperbola-backups/../etc/passwd", ""} {
		if _, err := c.StartRestore(ctx, "ab12cd34", 3, bad); err == nil {
			t.Errorf("StartRestore(%q) accepted", bad)
		}
	}
	if len(cs.Actions()) != calls {
		t.Errorf("API calls were made for bad locations: %v", cs.Actions()[calls:])
	}
}

func TestBackupReportsItsSize(t *testing.T) {
	ctx := context.Background()
	o := testOptions()
	cs := fake.NewClientset()
	c := NewCluster(cs, o)
	if _, err := cs.CoreV1().PersistentVolumeClaims(o.Namespace).Create(ctx, dataClaim(o.Namespace, "ab12cd34"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := c.StartBackup(ctx, "ab12cd34", 1)
	if err != nil {
		t.Fatal(err)
	}
	finish(t, cs, o.Namespace, "vs-code-ab12cd34-backup-1", batchv1.JobComplete, "", 0, b.Location+"\nbytes=4242\n")
	got, err := c.BackupStatus(ctx, "ab12cd34", 1)
	if err != nil || got.Phase != session.BackupSucceeded || got.Location != b.Location || got.Bytes != 4242 {
		t.Errorf("succeeded: %+v, %v", got, err)
	}
	// A Job that said only its location (or nothing, on kwok's nodes) has no size.
	if _, err := c.StartBackup(ctx, "ab12cd34", 2); err != nil {
		t.Fatal(err)
	}
	finish(t, cs, o.Namespace, "vs-code-ab12cd34-backup-2", batchv1.JobComplete, "", 0, b.Location+"\n")
	if got, err := c.BackupStatus(ctx, "ab12cd34", 2); err != nil || got.Phase != session.BackupSucceeded || got.Bytes != 0 {
		t.Errorf("succeeded without a size: %+v, %v", got, err)
	}
}

func TestRemoveArchives(t *testing.T) {
	ctx := context.Background()
	o := testOptions()
	cs := fake.NewClientset()
	c := NewCluster(cs, o)
	const name = "hyperbola-rm-0123456789ab"
	b, err := c.RemoveArchives(ctx, name, []string{archiveA, archiveB})
	if err != nil || b.Phase != session.BackupRunning {
		t.Fatalf("started: %+v, %v", b, err)
	}
	job, err := cs.BatchV1().Jobs(o.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if job.Labels[LabelComponent] != ComponentPrune || job.Labels[LabelManagedBy] != ManagedByValue {
		t.Errorf("labels %v", job.Labels)
	}
	if b, err := c.RemoveArchives(ctx, name, []string{archiveA, archiveB}); err != nil || b.Phase != session.BackupRunning || creates(cs, "jobs") != 1 {
		t.Errorf("again: %+v, %v", b, err)
	}
	finish(t, cs, o.Namespace, name, batchv1.JobComplete, "", 0, "removed=1\nmissing=1\n")
	if b, err := c.RemoveArchives(ctx, name, []string{archiveA, archiveB}); err != nil || b.Phase != session.BackupSucceeded {
		t.Errorf("done: %+v, %v", b, err)
	}

	const failing = "hyperbola-rm-ba9876543210"
	if _, err := c.RemoveArchives(ctx, failing, []string{archiveA}); err != nil {
		t.Fatal(err)
	}
	finish(t, cs, o.Namespace, failing, batchv1.JobFailed, "BackoffLimitExceeded", 1,
		"cannot remove zx98wv76/zx98wv76-20261127T080910Z.zip: rm: can't remove: Permission denied")
	if b, err := c.RemoveArchives(ctx, failing, []string{archiveA}); err != nil || b.Phase != session.BackupFailed ||
		!strings.Contains(b.Reason, "Permission denied") {
		t.Errorf("failed: %+v, %v", b, err)
	}

	calls := len(cs.Actions())
	for _, bad := range []struct {
		name      string
		locations []string
	}{
		{"Not_A_Name", []string{archiveA}},
		{name, nil},
		{name, []string{archiveA, "pvc://hyperbola-backups/zx98wv76"}},
		{name, []string{"pvc://other/zx98wv76/zx98wv76-20261127T080910Z.zip"}},
	} {
		if _, err := c.RemoveArchives(ctx, bad.name, bad.locations); err == nil {
			t.Errorf("RemoveArchives(%q, %q) accepted", bad.name, bad.locations)
		}
	}
	if len(cs.Actions()) != calls {
		t.Errorf("API calls were made for bad input: %v", cs.Actions()[calls:])
	}
}

// checkCluster is a Cluster on the fake clientset whose check Jobs end as end says: the
// Job's watch delivers a change that is not the end first, then the end, and the pod that
// ran the Job holds the termination message.
func checkCluster(t *testing.T, end func(job *batchv1.Job) (*batchv1.Job, *corev1.Pod)) (*Cluster, *fake.Clientset) {
	cs := fake.NewClientset()
	var created *batchv1.Job
	cs.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		created = a.(k8stesting.CreateAction).GetObject().(*batchv1.Job).DeepCopy()
		return false, nil, nil
	})
	cs.PrependWatchReactor("jobs", func(a k8stesting.Action) (bool, watch.Interface, error) {
		if created == nil {
			return true, nil, errors.New("a watch before the Job was created")
		}
		w := watch.NewFakeWithChanSize(3, false)
		running := created.DeepCopy()
		running.Status.Active = 1
		w.Modify(running)
		if end != nil {
			j, pod := end(created)
			if pod != nil {
				if err := cs.Tracker().Add(pod); err != nil {
					t.Error(err)
				}
			}
			w.Modify(j)
		}
		return true, w, nil
	})
	return NewCluster(cs, testOptions()), cs
}

// deletedJobs names the Jobs deleted, in the background.
func deletedJobs(t *testing.T, cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "jobs" {
			if p := d.GetDeleteOptions().PropagationPolicy; p == nil || *p != metav1.DeletePropagationBackground {
				t.Errorf("Job %s deleted without background propagation", d.GetName())
			}
			out = append(out, d.GetName())
		}
	}
	return out
}

func TestCheckArchive(t *testing.T) {
	ok := func(msg string) func(*batchv1.Job) (*batchv1.Job, *corev1.Pod) {
		return func(j *batchv1.Job) (*batchv1.Job, *corev1.Pod) { return ended(j, batchv1.JobComplete, "", 0, msg) }
	}
	for _, tc := range []struct {
		name string
		end  func(*batchv1.Job) (*batchv1.Job, *corev1.Pod)
		want *session.Archive
		// unavailable: what the error says
		unavailable string
	}{
		{name: "good", end: ok(`{"problem":"","detail":"","bytes":1981,"files":14,"uncompressed":17}` + "\n"),
			want: &session.Archive{Bytes: 1981, Files: 14, Uncompressed: 17}},
		{name: "empty", end: ok(`{"problem":"","detail":"","bytes":22,"files":0,"uncompressed":0}`),
			want: &session.Archive{Bytes: 22}},
		{name: "missing", end: ok(`{"problem":"missing","detail":"there is no file at ` + archiveA + `","bytes":0,"files":0,"uncompressed":0}`),
			want: &session.Archive{Problem: session.ArchiveMissing, Detail: "there is no file at " + archiveA}},
		{name: "not a zip", end: ok(`{"problem":"not_zip","detail":"it starts with the bytes 68656c6c, not a zip signature","bytes":5,"files":0,"uncompressed":0}`),
			want: &session.Archive{Problem: session.ArchiveNotZip, Detail: "it starts with the bytes 68656c6c, not a zip signature", Bytes: 5}},
		{name: "corrupt", end: ok(`{"problem":"corrupt","detail":"unzip -t exited 2: big.bin  bad CRC \"b9a7c398\" \\ (should be 060730c5)","bytes":50164,"files":0,"uncompressed":0}`),
			want: &session.Archive{Problem: session.ArchiveCorrupt, Detail: `unzip -t exited 2: big.bin  bad CRC "b9a7c398" \ (should be 060730c5)`, Bytes: 50164}},
		{name: "job failed", unavailable: "ran out of time",
			end: func(j *batchv1.Job) (*batchv1.Job, *corev1.Pod) {
				return ended(j, batchv1.JobFailed, "DeadlineExceeded", 1, "the check was stopped before it finished (it ran out of time)")
			}},
		{name: "no answer (kwok's nodes)", end: ok(""), unavailable: "answered nothing"},
		{name: "not a report", end: ok("pvc://x\n"), unavailable: "not a report"},
		{name: "an unknown problem", end: ok(`{"problem":"haunted"}`), unavailable: "unknown problem"},
		{name: "deleted under us", unavailable: "deleted before it finished",
			end: func(j *batchv1.Job) (*batchv1.Job, *corev1.Pod) { return nil, nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			end := tc.end
			c, cs := checkCluster(t, end)
			if tc.name == "deleted under us" {
				cs.PrependWatchReactor("jobs", func(a k8stesting.Action) (bool, watch.Interface, error) {
					w := watch.NewFakeWithChanSize(1, false)
					w.Delete(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "x"}})
					return true, w, nil
				})
			}
			got, err := c.CheckArchive(context.Background(), archiveA)
			if tc.unavailable != "" {
				if !errors.Is(err, session.ErrUnavailable) || !strings.Contains(err.Error(), tc.unavailable) {
					t.Errorf("err = %v, want unavailable: %s", err, tc.unavailable)
				}
			} else if err != nil || *got != *tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
			deleted := deletedJobs(t, cs)
			if len(deleted) != 1 || !strings.HasPrefix(deleted[0], CheckJobName(archiveA, "")) {
				t.Errorf("deleted Jobs %v", deleted)
			}
			if l, _ := cs.BatchV1().Jobs(c.opts.Namespace).List(context.Background(), metav1.ListOptions{}); len(l.Items) != 0 {
				t.Errorf("Jobs left: %d", len(l.Items))
			}
		})
	}
}

// A watch the API server ends (or expires) is started again from a fresh read of the Job.
func TestCheckArchiveWatchesAgain(t *testing.T) {
	c, cs := checkCluster(t, func(j *batchv1.Job) (*batchv1.Job, *corev1.Pod) {
		return ended(j, batchv1.JobComplete, "", 0, `{"problem":"","detail":"","bytes":22,"files":0,"uncompressed":0}`)
	})
	watches := 0
	cs.PrependWatchReactor("jobs", func(k8stesting.Action) (bool, watch.Interface, error) {
		watches++
		switch watches {
		case 1: // ends at once
			w := watch.NewFake()
			w.Stop()
			return true, w, nil
		case 2: // expired
			w := watch.NewFakeWithChanSize(1, false)
			w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired})
			return true, w, nil
		}
		return false, nil, nil // then the Job ends (checkCluster's watch)
	})
	a, err := c.CheckArchive(context.Background(), archiveA)
	if err != nil || *a != (session.Archive{Bytes: 22}) || watches != 3 {
		t.Errorf("got %+v, %v after %d watches", a, err, watches)
	}
	if gets := slices.IndexFunc(cs.Actions(), func(a k8stesting.Action) bool { return a.GetVerb() == "get" }); gets < 0 {
		t.Error("the Job was not read again after its watch ended")
	}
}

// A caller that stops waiting gets an unavailable error, and the Job is deleted all the same.
func TestCheckArchiveBoundedByContext(t *testing.T) {
	c, cs := checkCluster(t, nil) // a Job that never ends
	ctx, cancel := context.WithCancel(context.Background())
	cs.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		cancel() // the caller gives up as soon as the Job exists
		return false, nil, nil
	})
	_, err := c.CheckArchive(ctx, archiveA)
	if !errors.Is(err, session.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if deleted := deletedJobs(t, cs); len(deleted) != 1 {
		t.Errorf("deleted %v", deleted)
	}
	// A location off the backup claim: no Job at all.
	calls := len(cs.Actions())
	if _, err := c.CheckArchive(context.Background(), "pvc://other/zx98wv76/zx98wv76-20261127T080910Z.zip"); err == nil {
		t.Error("a location on another claim was checked")
	}
	if len(cs.Actions()) != calls {
		t.Errorf("API calls for a bad location: %v", cs.Actions()[calls:])
	}
}

func TestParseCheckReport(t *testing.T) {
	for msg, ok := range map[string]bool{
		`{"problem":"","detail":"","bytes":1,"files":1,"uncompressed":1}`:                                       true,
		"\n" + `{"problem":"corrupt","detail":"bad \u00fc \ufffd","bytes":1,"files":0,"uncompressed":0}` + "\n": true,
		`{"problem":"","bytes":-1}`:  false,
		`{"problem":"gone"}`:         false,
		`{"problem":"","bytes":"1"}`: false,
		"bytes=1":                    false,
		"":                           false,
	} {
		if _, err := parseCheckReport(msg); (err == nil) != ok {
			t.Errorf("parseCheckReport(%q): %v", msg, err)
		}
	}
}

// Deleting a session's volume stops its restore Jobs, running or not, and removes its
// finished backup Jobs; a running backup and other sessions' Jobs stay.
func TestDeleteWorkspaceStopsRestores(t *testing.T) {
	ctx := context.Background()
	o := testOptions()
	cs := fake.NewClientset()
	c := NewCluster(cs, o)
	for _, id := range []string{"ab12cd34", "zx98wv76"} {
		if _, err := cs.CoreV1().PersistentVolumeClaims(o.Namespace).Create(ctx, dataClaim(o.Namespace, id), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for attempt := 1; attempt <= 2; attempt++ {
			if _, err := c.StartRestore(ctx, id, attempt, archiveA); err != nil {
				t.Fatal(err)
			}
			if _, err := c.StartBackup(ctx, id, attempt); err != nil {
				t.Fatal(err)
			}
		}
	}
	finish(t, cs, o.Namespace, "vs-code-ab12cd34-restore-1", batchv1.JobFailed, "BackoffLimitExceeded", 1, "x")
	finish(t, cs, o.Namespace, "vs-code-ab12cd34-backup-1", batchv1.JobComplete, "", 0, "x")
	if err := c.DeleteWorkspace(ctx, "ab12cd34", false); err != nil {
		t.Fatal(err)
	}
	if d := deletedJobs(t, cs); len(d) != 0 {
		t.Errorf("keeping the volume deleted Jobs %v", d)
	}
	if err := c.DeleteWorkspace(ctx, "ab12cd34", true); err != nil {
		t.Fatal(err)
	}
	d := deletedJobs(t, cs)
	slices.Sort(d)
	want := []string{"vs-code-ab12cd34-backup-1", "vs-code-ab12cd34-restore-1", "vs-code-ab12cd34-restore-2"}
	if !slices.Equal(d, want) {
		t.Errorf("deleted Jobs %v, want %v", d, want)
	}
}

// The pods of restore, check and prune Jobs are no workspace's: a session being restored has
// no workspace pod, and Jobs of no session add no session.
func TestObserveIgnoresArchiveJobPods(t *testing.T) {
	ctx := context.Background()
	o := testOptions()
	cs := fake.NewClientset()
	c := NewCluster(cs, o)
	ws := testWorkspace()
	ws.Replicas = 0
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	restoreLabels, _ := Labels(ws.ID, ComponentRestore, nil)
	for name, l := range map[string]map[string]string{
		"restore": restoreLabels, "check": ArchiveLabels(ComponentCheck), "prune": ArchiveLabels(ComponentPrune),
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: l}}
		if _, err := cs.CoreV1().Pods(o.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	obs, err := c.Observe(ctx, ws.ID)
	if err != nil || obs.Pods != 0 || !obs.Complete {
		t.Errorf("Observe = %+v, %v", obs, err)
	}
	all, err := c.ObserveAll(ctx)
	if err != nil || len(all) != 1 || all[0].ID != ws.ID || all[0].Pods != 0 {
		t.Errorf("ObserveAll = %v, %v", all, err)
	}
	if r, err := c.Readiness(ctx, ws.ID); err != nil || r.Pods != 0 {
		t.Errorf("Readiness = %+v, %v", r, err)
	}
}
