package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// backupPVC is the backup claim of each run's namespace.
const backupPVC = "hyperbola-backups"

// runner is one run: a fresh namespace (its own backup claim, still unbound), its Redis prefix,
// a session core placed on the real node, and the namespace's watches.
type runner struct {
	o   options
	k   *testenv.Kube
	ns  string
	svc *session.Service
	w   *watcher
	res *results
}

// oneRun takes two sessions through their lives in a fresh namespace and adds what it measured
// to res:
//
//	first:  create → running, fill, sleep → pod gone, wake → running, delete (1st backup)
//	second: create → running, fill, delete (2nd backup)
//	third:  create restoring the second's backup → running (the files checked)
//	then:   the warm path's rows (warm.go): create on a warm volume, on a cold one, raw scale
func oneRun(ctx context.Context, k *testenv.Kube, rdb *redis.Client, o options, res *results) error {
	ns := testenv.UniqueName("realnode")
	if err := k.CreateNamespace(ctx, ns); err != nil {
		return err
	}
	defer removeNamespace(k, ns)
	node := k.RealNode
	if err := k.CreateBackupPVCOn(ctx, ns, backupPVC, node.StorageClass); err != nil {
		return err
	}
	vars := map[string]string{
		"HYPERBOLA_NAMESPACE":     ns,
		"HYPERBOLA_REDIS_PREFIX":  ns + ":",
		"HYPERBOLA_DOMAIN":        "ws.example.test",
		"USER_POD_IMAGE":          node.WorkspaceImage,
		"HYPERBOLA_BACKUP_IMAGE":  node.BackupImage,
		"HYPERBOLA_BACKUP_PVC":    backupPVC,
		"HYPERBOLA_STORAGE_CLASS": node.StorageClass,
		"HYPERBOLA_STORAGE_SIZE":  "4Gi",
		"HYPERBOLA_NODE_SELECTOR": testenv.RealNodeLabel + "=real",
		"HYPERBOLA_TOLERATIONS":   testenv.RealNodeLabel + "=real:NoSchedule",
	}
	if o.wakeOnAccess {
		vars["HYPERBOLA_WAKE_SECRET"] = testenv.WakeSecret()
	}
	cfg, err := config.FromLookup(func(name string) (string, bool) { v, ok := vars[name]; return v, ok })
	if err != nil {
		return err
	}
	st, err := stack.New(ctx, cfg, stack.Parts{Redis: rdb, Kube: k.Client})
	if err != nil {
		return err
	}
	defer st.Close()
	// The same deployment with the warm volume pool on, for the warm path's rows.
	vars["HYPERBOLA_WARM_VOLUMES"] = "1"
	wcfg, err := config.FromLookup(func(name string) (string, bool) { v, ok := vars[name]; return v, ok })
	if err != nil {
		return err
	}
	wst, err := stack.New(ctx, wcfg, stack.Parts{Redis: rdb, Kube: k.Client})
	if err != nil {
		return err
	}
	defer wst.Close()
	w := watchNamespace(ctx, k.Client, ns)
	defer w.close()
	r := &runner{o: o, k: k, ns: ns, svc: st.Service, w: w, res: res}
	if o.warmOnly {
		return r.warm(ctx, wst, st.Service)
	}

	first, err := r.create(ctx, phaseCreateFirst)
	if err != nil {
		return err
	}
	if err := r.fill(ctx, first); err != nil {
		return err
	}
	if err := r.sleep(ctx, first); err != nil {
		return err
	}
	if err := r.wake(ctx, first); err != nil {
		return err
	}
	if err := r.delete(ctx, first, backupFirst); err != nil {
		return err
	}
	second, err := r.create(ctx, phaseCreateSecond)
	if err != nil {
		return err
	}
	if err := r.fill(ctx, second); err != nil {
		return err
	}
	sum, err := r.sum(ctx, second)
	if err != nil {
		return err
	}
	if err := r.delete(ctx, second, backupSecond); err != nil {
		return err
	}
	if err := r.restore(ctx, second, sum); err != nil {
		return err
	}
	return r.warm(ctx, wst, st.Service)
}

// removeNamespace deletes a run's namespace and waits (up to a minute, untimed) until it is
// gone, so that freeing its volumes does not load the next run. The cluster's stop removes
// whatever is left.
func removeNamespace(k *testenv.Kube, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nss := k.Client.CoreV1().Namespaces()
	if err := nss.Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		progress("deleting namespace %s: %v", ns, err)
		return
	}
	for ctx.Err() == nil {
		if _, err := nss.Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(tick):
		}
	}
	progress("namespace %s still terminating after a minute; going on", ns)
}

// create makes a session and waits until the core reports it running.
func (r *runner) create(ctx context.Context, phase string) (string, error) {
	start := time.Now()
	s, err := r.svc.Create(ctx, session.CreateRequest{UserID: "bench-realnode@example.com"})
	if err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	at, err := r.waitRunning(ctx, s.ID)
	if err != nil {
		return "", err
	}
	r.res.add(phase, at.Sub(start))
	progress("%s: %s %s", s.ID, phase, at.Sub(start).Round(time.Millisecond))
	return s.ID, nil
}

// untilSession drives session id with Get until done says so; a failed session ends the wait.
func (r *runner) untilSession(ctx context.Context, id, what string, done func(*session.Session) bool) (time.Time, error) {
	return r.w.until(ctx, "session "+id+" "+what, r.o.patience, func() (bool, error) {
		s, err := r.svc.Get(ctx, id)
		if err != nil {
			return false, err
		}
		if s.State == session.StateFailed {
			return false, fmt.Errorf("session failed: %s", s.Reason)
		}
		return done(s), nil
	})
}

// waitRunning drives session id with Get until it runs with nothing pending, on the real node.
func (r *runner) waitRunning(ctx context.Context, id string) (time.Time, error) {
	at, err := r.untilSession(ctx, id, "running", func(s *session.Session) bool {
		return s.State == session.StateRunning && s.Pending == session.PendingNone
	})
	if err != nil {
		return at, err
	}
	_, err = r.pod(ctx, id)
	return at, err
}

// pod returns session id's running workspace pod, which must be on the real node.
func (r *runner) pod(ctx context.Context, id string) (*corev1.Pod, error) {
	pods, err := r.w.workspacePods(ctx, id)
	if err != nil {
		return nil, err
	}
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		if p.Spec.NodeName != r.k.RealNode.NodeName {
			return nil, fmt.Errorf("pod %s runs on %q, not on the real node %q", p.Name, p.Spec.NodeName, r.k.RealNode.NodeName)
		}
		return p, nil
	}
	return nil, fmt.Errorf("session %s has no running pod", id)
}

// fillScript writes $BIG random bytes to /app/big.bin and $FILES small files (1-8 KiB, half
// text, half random) in directories of 100 under /app/small, then prints /app's KiB.
const fillScript = `set -eu
head -c "$BIG" /dev/urandom > /app/big.bin
mkdir -p /app/small
i=0
while [ "$i" -lt "$FILES" ]; do
  d=/app/small/d$((i / 100))
  [ -d "$d" ] || mkdir "$d"
  if [ $((i % 2)) -eq 0 ]; then
    seq 1 $((100 + i % 1200)) > "$d/f$i.txt"
  else
    head -c $((1024 + i * 37 % 7168)) /dev/urandom > "$d/f$i.bin"
  fi
  i=$((i + 1))
done
sync
du -sk /app | cut -f1
`

// fill writes the workspace's files with kubectl exec in its code-server container, as its
// user would from the IDE's terminal.
func (r *runner) fill(ctx context.Context, id string) error {
	p, err := r.pod(ctx, id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.patience)
	defer cancel()
	start := time.Now()
	script := fmt.Sprintf("BIG=%d FILES=%d\n%s", r.o.big, r.o.files, fillScript)
	out, err := r.k.Exec(ctx, r.ns, p.Name, kube.ContainerName, script)
	if err != nil {
		return fmt.Errorf("filling: %w", err)
	}
	r.res.add(phaseFill, time.Since(start))
	progress("%s: %s %s (/app holds %s KiB)", id, phaseFill, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	return nil
}

// sleep puts session id to sleep and waits until its pod is gone from the API (the kubelet
// saw its containers stop).
func (r *runner) sleep(ctx context.Context, id string) error {
	start := time.Now()
	if _, err := r.svc.Sleep(ctx, id); err != nil {
		return fmt.Errorf("sleep: %w", err)
	}
	at, err := r.w.until(ctx, "session "+id+" has no pod", r.o.patience, func() (bool, error) {
		pods, err := r.w.workspacePods(ctx, id)
		return len(pods) == 0, err
	})
	if err != nil {
		return err
	}
	r.res.add(phaseSleep, at.Sub(start))
	progress("%s: %s %s", id, phaseSleep, at.Sub(start).Round(time.Millisecond))
	return nil
}

// wake wakes session id and waits until the core reports it running.
func (r *runner) wake(ctx context.Context, id string) error {
	start := time.Now()
	if _, err := r.svc.Wake(ctx, id); err != nil {
		return fmt.Errorf("wake: %w", err)
	}
	at, err := r.waitRunning(ctx, id)
	if err != nil {
		return err
	}
	r.res.add(phaseWake, at.Sub(start))
	progress("%s: %s %s", id, phaseWake, at.Sub(start).Round(time.Millisecond))
	return nil
}

// delete deletes running session id with its backup and waits until the core reports it
// deleted; the backup Job's creation and completion come from the Jobs watch.
func (r *runner) delete(ctx context.Context, id string, b backupPhases) error {
	start := time.Now()
	s, err := r.svc.Delete(ctx, id, session.DeleteOptions{})
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	job, err := kube.BackupJobName(id, s.Attempt)
	if err != nil {
		return err
	}
	var location string
	at, err := r.untilSession(ctx, id, "deleted", func(s *session.Session) bool {
		location = s.BackupLocation
		return s.State == session.StateDeleted
	})
	if err != nil {
		return err
	}
	jt := r.w.job(job)
	if jt.created.IsZero() || jt.complete.IsZero() {
		return fmt.Errorf("the watch did not see backup Job %s created and succeed (created %v, succeeded %v)", job, !jt.created.IsZero(), !jt.complete.IsZero())
	}
	r.res.add(b.toJob, jt.created.Sub(start))
	r.res.add(b.job, jt.complete.Sub(jt.created))
	r.res.add(b.total, at.Sub(start))
	size, err := r.zipSize(ctx, location)
	if err != nil {
		return err
	}
	r.res.zips = append(r.res.zips, size)
	progress("%s: %s %s, %s %s, %s %s (zip %d bytes)", id,
		b.toJob, jt.created.Sub(start).Round(time.Millisecond), b.job, jt.complete.Sub(jt.created).Round(time.Millisecond),
		b.total, at.Sub(start).Round(time.Millisecond), size)
	return nil
}

// sumScript prints one line per file under /app (sorted): its mode and its bytes' SHA-256.
const sumScript = `cd /app && find . -path ./lost+found -prune -o -type f -print | LC_ALL=C sort | while IFS= read -r f; do
  printf '%s %s %s\n' "$(stat -c %a "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)" "$f"
done | sha256sum | cut -d' ' -f1`

// sum checksums session id's files (their modes and bytes) in its pod, untimed.
func (r *runner) sum(ctx context.Context, id string) (string, error) {
	p, err := r.pod(ctx, id)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.patience)
	defer cancel()
	out, err := r.k.Exec(ctx, r.ns, p.Name, kube.ContainerName, sumScript)
	if err != nil {
		return "", fmt.Errorf("checksumming: %w", err)
	}
	return strings.TrimSpace(out), nil
}

// restore creates a session from deleted session from's latest backup and waits until it
// runs: the create (which reads the archive through with a check Job), the restore Job, and
// the whole until running. The restored files must checksum as want.
func (r *runner) restore(ctx context.Context, from, want string) error {
	start := time.Now()
	s, err := r.svc.Create(ctx, session.CreateRequest{UserID: "bench-realnode@example.com", RestoreFrom: from})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	created := time.Now()
	job, err := kube.RestoreJobName(s.ID, s.Attempt)
	if err != nil {
		return err
	}
	at, err := r.waitRunning(ctx, s.ID)
	if err != nil {
		return err
	}
	jt := r.w.job(job)
	if jt.created.IsZero() || jt.complete.IsZero() {
		return fmt.Errorf("the watch did not see restore Job %s created and succeed", job)
	}
	got, err := r.sum(ctx, s.ID)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("the restored files of %s differ from %s's (checksums %s, %s)", s.ID, from, got, want)
	}
	r.res.add(phaseRestoreCreate, created.Sub(start))
	r.res.add(phaseRestoreJob, jt.complete.Sub(jt.created))
	r.res.add(phaseRestoreTotal, at.Sub(start))
	progress("%s: %s %s, %s %s, %s %s (files identical)", s.ID, phaseRestoreCreate, created.Sub(start).Round(time.Millisecond),
		phaseRestoreJob, jt.complete.Sub(jt.created).Round(time.Millisecond), phaseRestoreTotal, at.Sub(start).Round(time.Millisecond))
	return nil
}

// zipSize is the size of the zip at location (pvc://<claim>/<id>/<file>), read on this host.
func (r *runner) zipSize(ctx context.Context, location string) (int64, error) {
	rel, ok := strings.CutPrefix(location, "pvc://"+backupPVC+"/")
	if !ok {
		return 0, fmt.Errorf("backup location %q is not on %s", location, backupPVC)
	}
	root, err := r.k.VolumeHostPath(ctx, r.ns, backupPVC)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(filepath.Join(root, rel))
	if err != nil {
		return 0, fmt.Errorf("the backup's zip: %w", err)
	}
	return fi.Size(), nil
}
