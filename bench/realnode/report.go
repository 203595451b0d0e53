package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/bench/internal/stats"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// The rows of the table, in its order.
const (
	phaseCreateFirst   = "create→running, 1st"
	phaseCreateSecond  = "create→running, 2nd"
	phaseSleep         = "sleep→pod gone"
	phaseWake          = "wake→running"
	phaseFill          = "fill (kubectl exec)"
	phaseRestoreCreate = "restore: create (archive checked)"
	phaseRestoreJob    = "restore: Job created→complete"
	phaseRestoreTotal  = "restore: create→running"
)

// backupPhases names the three rows of one delete's backup.
type backupPhases struct{ toJob, job, total string }

var (
	backupFirst  = backupPhases{"delete→Job created, 1st", "Job created→complete, 1st", "delete→deleted, 1st"}
	backupSecond = backupPhases{"delete→Job created, 2nd", "Job created→complete, 2nd", "delete→deleted, 2nd"}
)

func rows() []string {
	return []string{
		phaseCreateFirst, phaseCreateSecond, phaseSleep, phaseWake,
		backupFirst.toJob, backupFirst.job, backupFirst.total,
		backupSecond.toJob, backupSecond.job, backupSecond.total,
		phaseRestoreCreate, phaseRestoreJob, phaseRestoreTotal,
		phaseFill,
		phaseCreateWarm, phaseCreateCold, phaseRawScale,
	}
}

// legend says what each row measures; printed under the table.
const legend = `Each run is a fresh namespace with its own backup claim (local-path, bound by its first
backup) and three sessions, one after the other, each on a new local-path volume:
  1st: create, fill, sleep, wake, delete;  2nd (once the 1st is deleted): create, fill, delete;
  3rd: create with restore_from the 2nd, until running, its files checksummed as the 2nd's;
  then the warm path: a create on a warm volume, one on a cold volume, a raw scale 0→1
  (with -warm-only, only these).
Every time ends when this process saw it happen (the namespace's watches, a 1 s tick under them).

create→running, 1st     Service.Create until Get reports running (pod Ready, Ingress routed) for
                        the namespace's first workspace: a new volume, provisioned when its pod
                        is scheduled. In run 1 also the node's first code-server start.
create→running, 2nd     the same for the second session: a new volume again, with the image
                        warm (its files in the page cache) and the backup volume already bound.
sleep→pod gone          Service.Sleep until the workspace's pod is gone from the API (code-server
                        stopped, the volume released).
wake→running            Service.Wake until running: the same volume, now holding the big file
                        and the small files (fsGroupChangePolicy OnRootMismatch: no chown walk).
delete→Job created      Service.Delete of the running workspace until the backup Job exists: the
                        scale to 0 and the pod's exit (the backup starts only once it is gone).
Job created→complete    the backup Job until it reports success (SuccessCriteriaMet or Complete,
                        what the session core waits for): its pod scheduled and started (1st:
                        the backup volume is provisioned now), the checks (find, du, df), zip,
                        unzip -t, sync, rename.
delete→deleted          Service.Delete until Get reports deleted: the two above, then the
                        removal of the objects, the volume included.
restore: create         Service.Create with restore_from until it answers: the archive read
                        through by a check Job (pod start, unzip -t of the whole zip, zipinfo),
                        then the objects applied at zero replicas and the restore Job created.
restore: Job            the restore Job until it reports success: its pod started on the new
                        volume (provisioned now), the archive unzipped onto it, sync.
restore: create→running the whole restore until Get reports running: the two above, then the
                        workspace's pod started on the filled volume.
warm volume             Service.Create until running with HYPERBOLA_WARM_VOLUMES=1, the pool
                        filled beforehand (untimed): the claim binds at once to a volume
                        local-path provisioned for a pool claim, with no pod.
cold volume             the same create without a pool: the volume is provisioned once the
                        pod is scheduled (WaitForFirstConsumer), by a helper pod.
raw scale 0→1           the warm session asleep (untimed), its Deployment scaled to 1 through
                        the scale subresource, bypassing the session core, until its pod is
                        Ready: the floor a create and a wake are measured against (the same
                        pod, its volume bound). The ratios under the table are at p50.
fill                    not a Hyperbola step: kubectl exec writing the files the backups zip
                        (head -c BIG /dev/urandom > /app/big.bin, the small files, sync).
`

// results are the durations measured, by row, and the size of every zip.
type results struct {
	d    map[string][]time.Duration
	zips []int64
}

func (r *results) add(phase string, d time.Duration) { r.d[phase] = append(r.d[phase], d) }

func (r *results) print(out io.Writer, o options, node *testenv.RealNode, before, after string) error {
	if o.warmOnly {
		fmt.Fprintf(out, "runs %d; the warm path's rows only (-warm-only: no files written)\n", o.runs)
	} else {
		fmt.Fprintf(out, "runs %d; each workspace holds %s of random bytes and %d small files (1-8 KiB)\n",
			o.runs, bytesString(o.big), o.files)
	}
	if o.wakeOnAccess {
		fmt.Fprintln(out, "wake on access on: a sleeping workspace's route goes to the activator, and back before it reports running")
	}
	fmt.Fprintf(out, "images %s, %s; storage class %s\n", node.WorkspaceImage, node.BackupImage, node.StorageClass)
	fmt.Fprintf(out, "machine: %s\n", hostInfo())
	fmt.Fprintf(out, "load average (1, 5, 15 min): %s before, %s after\n\n", before, after)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\truns\tp50\tp99\tmax")
	for _, p := range rows() {
		d := r.d[p]
		if len(d) == 0 && o.warmOnly {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", p, len(d), pct(d, 50), pct(d, 99), pct(d, 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	warm, okW := stats.Percentile(r.d[phaseCreateWarm], 50)
	raw, okR := stats.Percentile(r.d[phaseRawScale], 50)
	cold, okC := stats.Percentile(r.d[phaseCreateCold], 50)
	if okW && okR && okC && raw > 0 {
		fmt.Fprintf(out, "\nwarm create→running / raw scale 0→1 (p50): %.2f× (goal ≤ 1.5×); cold / raw: %.2f×\n",
			float64(warm)/float64(raw), float64(cold)/float64(raw))
	}
	if wake, ok := stats.Percentile(r.d[phaseWake], 50); ok && okR && raw > 0 {
		fmt.Fprintf(out, "wake→running / raw scale 0→1 (p50): %.2f× (goal ≤ 1.2×)\n", float64(wake)/float64(raw))
	}
	if len(r.zips) > 0 {
		z := slices.Clone(r.zips)
		slices.Sort(z)
		fmt.Fprintf(out, "\nzips: %d, %s to %s\n", len(z), bytesString(z[0]), bytesString(z[len(z)-1]))
	}
	_, err := fmt.Fprint(out, "\n"+legend)
	return err
}

func pct(d []time.Duration, p int) string { return stats.Format(d, p, 10*time.Millisecond) }

func bytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// loadAverage is the load average now (/proc/loadavg's first three fields).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// hostInfo describes this machine: CPU model and count, memory, kernel.
func hostInfo() string {
	model, mem, kernel := "?", "?", "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(l, "MemTotal: %d kB", &kb); err == nil {
				mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d × %s, %s memory, Linux %s", runtime.NumCPU(), model, mem, kernel)
}
