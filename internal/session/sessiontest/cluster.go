package sessiontest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// workspace is what the fake cluster holds for one session.
type workspace struct {
	applied  session.Workspace // the last workspace applied (or routed)
	kinds    map[session.ObjectKind]bool
	replicas int32
	pods     int
	linger   int // pods that stay while they terminate (SetPods)
	ready    bool
	problem  string
	password string
	created  time.Time
	reroute  bool // its routes are not the routing's until the next Apply (Add's Observed.Reroute)
}

// Cluster is a session.Cluster in memory. A workspace scaled up is not ready until SetReady
// (or at once with SetAutoReady); a backup Job runs until FinishBackup (or ends at once with
// SetAutoBackup, or SetAutoBackupFor one session). Calls lists the calls that change something.
type Cluster struct {
	faults
	mu         sync.Mutex
	now        func() time.Time
	ws         map[string]*workspace
	backups    map[string]*session.Backup // "<id>/<attempt>"
	calls      []string
	applied    []session.Workspace
	autoReady  bool
	autoBackup session.BackupPhase
	backupFor  map[string]session.BackupPhase // per session, over autoBackup (SetAutoBackupFor)
	arch       archives
}

var _ session.Cluster = (*Cluster)(nil)

// NewCluster returns an empty cluster whose objects are created at now().
func NewCluster(now func() time.Time) *Cluster {
	if now == nil {
		now = time.Now
	}
	return &Cluster{now: now, ws: map[string]*workspace{}, backups: map[string]*session.Backup{},
		backupFor: map[string]session.BackupPhase{}}
}

// SetAutoReady makes every workspace with replicas ready at once (true) or only on SetReady.
func (c *Cluster) SetAutoReady(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.autoReady = on
	for _, w := range c.ws {
		c.settle(w)
	}
}

// SetAutoBackup makes every backup Job end in phase as soon as it starts ("" leaves them
// running until FinishBackup).
func (c *Cluster) SetAutoBackup(phase session.BackupPhase) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.autoBackup = phase
}

// SetAutoBackupFor overrides SetAutoBackup for the backup Jobs of session id that start
// later: they end in phase at once ("" leaves them running until FinishBackup). A failed
// backup of one session among others, or a retried delete whose next backup succeeds, is
// set up this way.
func (c *Cluster) SetAutoBackupFor(id string, phase session.BackupPhase) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.backupFor[id] = phase
}

// SetReady makes the workspace's pod ready (or not, with the problem a pod reports).
func (c *Cluster) SetReady(id string, ready bool, problem string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.ws[id]; w != nil {
		w.ready, w.problem = ready && w.replicas > 0, problem
	}
}

// SetPods keeps n pods of the workspace in the cluster whatever its replicas, as pods still
// terminating would stay; 0 lets them follow the replicas again.
func (c *Cluster) SetPods(id string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.ws[id]; w != nil {
		w.linger = n
		c.settle(w)
	}
}

// Add puts objects of a session in the cluster, as something else made them (reconcile's
// input): kinds present, replicas, readiness, owner and creation time from o.
func (c *Cluster) Add(o *session.Observed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &workspace{kinds: map[session.ObjectKind]bool{}, replicas: o.DesiredReplicas, ready: o.Ready,
		created: o.Created, password: "pw-" + o.ID, problem: o.PodProblem, reroute: o.Reroute}
	w.applied = session.Workspace{ID: o.ID, UserID: o.UserID, Labels: o.Labels, Image: o.Image, Storage: o.Storage,
		CPU: o.CPU, Memory: o.Memory, IdleTimeout: o.IdleTimeout, CreatedAt: o.Created, Replicas: o.DesiredReplicas}
	for _, k := range o.Kinds {
		w.kinds[k] = true
	}
	w.pods = o.Pods
	if o.Pods == 0 && o.DesiredReplicas > 0 {
		w.pods = int(o.DesiredReplicas)
	}
	c.ws[o.ID] = w
}

// Remove deletes objects of a session out of band (all of them when no kind is named).
func (c *Cluster) Remove(id string, kinds ...session.ObjectKind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.ws[id]
	if w == nil {
		return
	}
	if len(kinds) == 0 {
		delete(c.ws, id)
		return
	}
	for _, k := range kinds {
		delete(w.kinds, k)
		if k == session.ObjectDeployment {
			w.replicas, w.pods, w.ready = 0, 0, false
		}
	}
	if len(w.kinds) == 0 {
		delete(c.ws, id)
	}
}

// FinishBackup ends the backup Job of (id, attempt) in phase, with reason when it failed.
func (c *Cluster) FinishBackup(id string, attempt int, phase session.BackupPhase, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.backups[backupKey(id, attempt)]; b != nil {
		b.Phase, b.Reason = phase, reason
		if phase == session.BackupSucceeded {
			c.PutArchive(b.Location, session.Archive{Bytes: b.Bytes, Files: 3, Uncompressed: 2 << 20})
		}
	}
}

// Calls returns the calls that changed something, in order: "apply <id> replicas=<n>",
// "scale <id> <n>", "route <id> activator=<bool>", "backup <id> <attempt>",
// "delete <id> pvc=<bool>".
func (c *Cluster) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// Applied returns every workspace given to Apply, in order.
func (c *Cluster) Applied() []session.Workspace {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.applied)
}

// Workspace returns the last workspace applied or routed for id, and whether id has objects.
func (c *Cluster) Workspace(id string) (session.Workspace, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.ws[id]; w != nil {
		return w.applied, true
	}
	return session.Workspace{}, false
}

// Replicas returns the Deployment's desired replicas (0 when there is none).
func (c *Cluster) Replicas(id string) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.ws[id]; w != nil {
		return w.replicas
	}
	return 0
}

// change starts a call that changes something: it answers the fault injected for method, or
// locks the cluster (unlock frees it) and logs the call.
func (c *Cluster) change(ctx context.Context, method, format string, args ...any) (unlock func(), err error) {
	if err := c.call(ctx, method); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.calls = append(c.calls, fmt.Sprintf(format, args...))
	return c.mu.Unlock, nil
}

// settle moves pods along with the replicas: they come (ready when autoReady) and go at once,
// but for those SetPods keeps.
func (c *Cluster) settle(w *workspace) {
	w.pods = max(int(w.replicas), w.linger)
	if w.replicas == 0 {
		w.ready = false
	} else if c.autoReady {
		w.ready, w.problem = true, ""
	}
}

// Apply creates or updates every object; an existing password is never replaced.
func (c *Cluster) Apply(ctx context.Context, ws session.Workspace) error {
	unlock, err := c.change(ctx, "Apply", "apply %s replicas=%d", ws.ID, ws.Replicas)
	if err != nil {
		return err
	}
	defer unlock()
	c.applied = append(c.applied, ws)
	w := c.ws[ws.ID]
	if w == nil {
		w = &workspace{kinds: map[session.ObjectKind]bool{}, created: c.now().UTC()}
		c.ws[ws.ID] = w
	}
	for _, k := range session.WorkspaceKinds {
		w.kinds[k] = true
	}
	w.reroute = false
	if w.password == "" {
		w.password = ws.Password
	}
	rolled := w.applied.Image != ws.Image || w.applied.CPU != ws.CPU || w.applied.Memory != ws.Memory
	w.applied, w.applied.Password = ws, ""
	if w.replicas != ws.Replicas || rolled {
		w.replicas, w.ready = ws.Replicas, false
		c.settle(w)
	}
	return nil
}

// Route applies the Ingress alone.
func (c *Cluster) Route(ctx context.Context, ws session.Workspace) error {
	unlock, err := c.change(ctx, "Route", "route %s activator=%v", ws.ID, ws.Activator)
	if err != nil {
		return err
	}
	defer unlock()
	if w := c.ws[ws.ID]; w != nil {
		w.kinds[session.ObjectIngress] = true
		w.applied.Activator = ws.Activator
	}
	return nil
}

// Scale sets the replicas; it fails when there is no Deployment.
func (c *Cluster) Scale(ctx context.Context, id string, replicas int32) error {
	unlock, err := c.change(ctx, "Scale", "scale %s %d", id, replicas)
	if err != nil {
		return err
	}
	defer unlock()
	w := c.ws[id]
	if w == nil || !w.kinds[session.ObjectDeployment] {
		return fmt.Errorf("scaling %s: deployment not found", id)
	}
	if w.replicas != replicas {
		w.replicas, w.ready = replicas, false
		c.settle(w)
	}
	return nil
}

// Observe reports the session's objects.
func (c *Cluster) Observe(ctx context.Context, id string) (*session.Observed, error) {
	if err := c.call(ctx, "Observe"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.observe(id), nil
}

// Readiness reports the Deployment alone (Kinds holds it or nothing), counts and readiness.
func (c *Cluster) Readiness(ctx context.Context, id string) (*session.Observed, error) {
	if err := c.call(ctx, "Readiness"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.observe(id)
	r := &session.Observed{ID: id, DesiredReplicas: o.DesiredReplicas, ReadyReplicas: o.ReadyReplicas,
		Pods: o.Pods, Ready: o.Ready, PodProblem: o.PodProblem}
	if o.Has(session.ObjectDeployment) {
		r.Kinds = []session.ObjectKind{session.ObjectDeployment}
	}
	return r, nil
}

func (c *Cluster) observe(id string) *session.Observed {
	w := c.ws[id]
	if w == nil {
		return &session.Observed{ID: id}
	}
	o := &session.Observed{ID: id, UserID: w.applied.UserID, Labels: w.applied.Labels, Created: w.created,
		IdleTimeout: w.applied.IdleTimeout, PodProblem: w.problem, Reroute: w.reroute}
	for _, k := range session.WorkspaceKinds {
		if w.kinds[k] {
			o.Kinds = append(o.Kinds, k)
		}
	}
	o.Complete = len(o.Kinds) == len(session.WorkspaceKinds)
	if w.kinds[session.ObjectDeployment] {
		o.DesiredReplicas, o.Pods, o.Ready = w.replicas, w.pods, w.ready
		o.Image, o.CPU, o.Memory = w.applied.Image, w.applied.CPU, w.applied.Memory
		if w.ready {
			o.ReadyReplicas = w.replicas
		}
	}
	if w.kinds[session.ObjectPVC] {
		o.PVCPhase, o.Storage = "Bound", w.applied.Storage
	}
	return o
}

// ObserveAll reports every session with objects, by id.
func (c *Cluster) ObserveAll(ctx context.Context) ([]*session.Observed, error) {
	if err := c.call(ctx, "ObserveAll"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*session.Observed, 0, len(c.ws))
	for id := range c.ws {
		out = append(out, c.observe(id))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Password reads the password the first Apply wrote.
func (c *Cluster) Password(ctx context.Context, id string) (string, error) {
	if err := c.call(ctx, "Password"); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.ws[id]; w != nil && w.kinds[session.ObjectSecret] {
		return w.password, nil
	}
	return "", session.NotFound(id)
}

func backupKey(id string, attempt int) string { return fmt.Sprintf("%s/%d", id, attempt) }

// StartBackup starts (or finds) the Job of (id, attempt); NotFound when there is no volume.
func (c *Cluster) StartBackup(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	if err := c.call(ctx, "StartBackup"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := backupKey(id, attempt)
	if b := c.backups[k]; b != nil {
		cp := *b
		return &cp, nil
	}
	if w := c.ws[id]; w == nil || !w.kinds[session.ObjectPVC] {
		return nil, session.NotFound(id)
	}
	c.calls = append(c.calls, fmt.Sprintf("backup %s %d", id, attempt))
	// named as internal/kube names them; a backup that succeeds leaves its archive (PutArchive)
	b := &session.Backup{Phase: session.BackupRunning, Bytes: 1 << 20,
		Location: fmt.Sprintf("pvc://backups/%s/%s-%s.zip", id, id, c.now().UTC().Format("20060102T150405Z"))}
	phase, ok := c.backupFor[id]
	if !ok {
		phase = c.autoBackup
	}
	if phase != "" {
		b.Phase = phase
		if b.Phase == session.BackupFailed {
			b.Reason = "zip: no space left on device"
		}
	}
	if b.Phase == session.BackupSucceeded {
		c.PutArchive(b.Location, session.Archive{Bytes: b.Bytes, Files: 3, Uncompressed: 2 << 20})
	}
	c.backups[k] = b
	cp := *b
	return &cp, nil
}

// BackupStatus reports the Job of (id, attempt); missing when it was never started.
func (c *Cluster) BackupStatus(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	if err := c.call(ctx, "BackupStatus"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.backups[backupKey(id, attempt)]; b != nil {
		cp := *b
		return &cp, nil
	}
	return &session.Backup{Phase: session.BackupMissing}, nil
}

// DeleteWorkspace deletes the objects at once; the volume only when deletePVC.
func (c *Cluster) DeleteWorkspace(ctx context.Context, id string, deletePVC bool) error {
	unlock, err := c.change(ctx, "DeleteWorkspace", "delete %s pvc=%v", id, deletePVC)
	if err != nil {
		return err
	}
	defer unlock()
	w := c.ws[id]
	if w == nil {
		return nil
	}
	if deletePVC || !w.kinds[session.ObjectPVC] {
		delete(c.ws, id)
		return nil
	}
	w.kinds = map[session.ObjectKind]bool{session.ObjectPVC: true}
	w.replicas, w.pods, w.ready = 0, 0, false
	return nil
}
