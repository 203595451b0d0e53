package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"
)

// Options configures a Service. Zero values take the defaults noted.
type Options struct {
	Domain      string        // workspace URLs are https://vs-code-<id>.<Domain>
	Image       string        // default image
	Storage     string        // default PVC size ("5Gi")
	CPU         string        // default CPU request ("250m")
	Memory      string        // default memory request ("256Mi")
	IdleTimeout time.Duration // default idle timeout (15m)
	// IdleConnectedMax is the default cap on the time an open tab without use keeps a
	// workspace awake, counted from its last real use: 0 is no cap (the zero value; the
	// deployment's default, DefaultIdleConnectedMax, comes from internal/config). A session
	// whose idle timeout is longer gets its idle timeout as its cap.
	IdleConnectedMax time.Duration
	SessionTTL       time.Duration // a session's lifetime (24h); the sweep deletes expired ones
	LockTTL          time.Duration // a session lock's TTL, extended while a transition runs (60s)
	// TransitionTimeout bounds the work of one transition (three quarters of LockTTL). It
	// may be longer than LockTTL: the lock is extended while the work runs, and the work
	// stops whenever the lock cannot be confirmed for three quarters of its TTL.
	TransitionTimeout time.Duration
	LockWait          time.Duration // how long a transition waits for the lock (15s)
	RequestTTL        time.Duration // how long an idempotency key is remembered (24h)
	Now               func() time.Time
	Logger            *slog.Logger
	Recorder          Recorder // durable events; nil records nothing
	MaxIDRetries      int      // id collisions retried before giving up (8)
	// MaxBackupAttempts bounds the failed backups of one delete (3): after that a delete
	// without skip_backup is refused until the session wakes (its user can fix what made the
	// backup fail: an unreadable file, say).
	MaxBackupAttempts int
	// BackupRetention is how long an archive is kept before the sweep removes it
	// (DefaultBackupRetention, 30 days); a negative value keeps archives forever.
	BackupRetention time.Duration
	// Limits bound what a caller may ask for (the zero value bounds nothing).
	Limits Limits
	// AwaitInterval spaces the reads of one Await on a Cluster that does not watch pods
	// (25ms). With readiness rounds (internal/kube) it is their interval: each read joins the
	// next round, so a waiting caller costs the cluster no more than one polling at that pace.
	AwaitInterval time.Duration
	// AwaitFallback spaces the reads of an Await on a Cluster that watches pods (1s): they
	// follow the pod's changes, and this bounds how late a change the watch cannot see (the
	// Deployment's own) is read.
	AwaitFallback time.Duration
}

func (o *Options) defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defD := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Domain, DefaultDomain)
	def(&o.Image, DefaultImage)
	def(&o.Storage, DefaultStorage)
	def(&o.CPU, DefaultCPU)
	def(&o.Memory, DefaultMemory)
	defD(&o.IdleTimeout, DefaultIdleTimeout)
	defD(&o.SessionTTL, DefaultSessionTTL)
	defD(&o.LockTTL, time.Minute)
	defD(&o.LockWait, 15*time.Second)
	defD(&o.TransitionTimeout, o.LockTTL*3/4)
	defD(&o.RequestTTL, 24*time.Hour)
	defD(&o.AwaitInterval, 25*time.Millisecond)
	defD(&o.AwaitFallback, time.Second)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxIDRetries == 0 {
		o.MaxIDRetries = 8
	}
	if o.MaxBackupAttempts == 0 {
		o.MaxBackupAttempts = 3
	}
	defD(&o.BackupRetention, DefaultBackupRetention)
}

// Service is the session core: it implements Manager on a Cluster and a Store, and drives
// every pending step forward when a session is touched.
type Service struct {
	cluster Cluster
	store   Store
	opts    Options
	log     *slog.Logger
}

var _ Manager = (*Service)(nil)

// NewService returns a Service on cluster and store.
func NewService(cluster Cluster, store Store, opts Options) *Service {
	opts.defaults()
	return &Service{cluster: cluster, store: store, opts: opts, log: opts.Logger.With("component", "session")}
}

// Options returns the effective options (defaults filled in).
func (s *Service) Options() Options { return s.opts }

// URL returns the workspace URL of session id.
func (s *Service) URL(id string) string { return WorkspaceURL(id, s.opts.Domain) }

// Create reserves a new session, applies its objects and returns it with its IDE password;
// the pod becomes ready after the call (Get reports running then).
func (s *Service) Create(ctx context.Context, req CreateRequest) (*Session, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	sess, err := s.newSession(req)
	if err != nil {
		return nil, err
	}
	if err := s.checkMaximums(nil, sess); err != nil {
		return nil, err
	}
	if req.RequestID != "" {
		existing, err := s.store.ClaimRequest(ctx, req.RequestID, sess.ID, s.opts.RequestTTL)
		if err != nil {
			return nil, err
		}
		if existing != sess.ID {
			got, err := s.resumeCreate(ctx, existing)
			if !errors.Is(err, ErrNotFound) {
				return got, err
			}
			// the first attempt claimed the id but stopped before reserving it: use that id
			sess.ID, sess.WorkspaceURL = existing, s.URL(existing)
		}
	}
	if req.RestoreFrom != "" {
		// The archive is found, checked as the caller's and read through before the session
		// is reserved: bad input leaves no session, object or Job behind. (A retry of a
		// create that got this far answers from the claim above, without reading it again.)
		if err := s.restoreSource(ctx, req, sess); err != nil {
			return nil, err
		}
		// the volume may have grown to the archive's size
		if err := overMax("storage", LimitMaxStorage, sess.Storage, s.opts.Limits.MaxStorage); err != nil {
			return nil, err
		}
	}
	// The count limits are checked with the reservation under one lock, so two creates cannot
	// both take the last slot.
	var end func()
	err = s.withQuota(ctx, sess.UserID, true, sess.State != StateSleeping, func() error {
		var err error
		ctx, end, err = s.reserve(ctx, sess, req.RequestID != "")
		return err
	})
	if err != nil {
		return nil, err
	}
	defer end()
	s.record(ctx, sess, "created", "", "")
	if err := s.applyNew(ctx, sess); err != nil {
		return nil, cut(ctx, err)
	}
	if sess.Pending == PendingRestore {
		// The restore Job starts now rather than on the first poll. The session exists
		// whatever happens here (an error would make a retrying caller create a second
		// one): a Job that could not start is started by the next touch or sweep.
		password := sess.Password
		if err := s.advance(ctx, sess); err != nil {
			s.log.Warn("starting the restore Job; the next touch starts it", "id", sess.ID, "err", cut(ctx, err))
		}
		sess.Password = password
	}
	return sess, nil
}

// newSession builds the record of a new session (id and password included) from a checked req.
func (s *Service) newSession(req CreateRequest) (*Session, error) {
	now := s.opts.Now().UTC()
	sess := &Session{
		UserID:         req.UserID,
		State:          StateCreating,
		Pending:        PendingApply,
		PendingSince:   now,
		Image:          orDefault(req.Image, s.opts.Image),
		Storage:        orDefault(req.Storage, s.opts.Storage),
		CPU:            orDefault(req.CPU, s.opts.CPU),
		Memory:         orDefault(req.Memory, s.opts.Memory),
		IdleTimeout:    Duration(s.opts.IdleTimeout),
		BackupOnDelete: true,
		Labels:         maps.Clone(req.Labels),
		CreatedAt:      now,
		UpdatedAt:      now,
		LastActivity:   now,
		ExpiresAt:      now.Add(s.opts.SessionTTL),
	}
	if req.IdleTimeout != nil {
		sess.IdleTimeout = *req.IdleTimeout
	}
	sess.IdleConnectedMax = defaultConnectedMax(s.opts.IdleConnectedMax, sess.IdleTimeout)
	if req.IdleConnectedMax != nil {
		sess.IdleConnectedMax = *req.IdleConnectedMax
		if err := CheckIdlePair(sess.IdleTimeout, sess.IdleConnectedMax); err != nil {
			return nil, err
		}
	}
	if req.TTL != nil {
		sess.ExpiresAt = ExpiresAt(now, *req.TTL)
	}
	if req.BackupOnDelete != nil {
		sess.BackupOnDelete = *req.BackupOnDelete
	}
	if req.State == StateSleeping {
		sess.State = StateSleeping
	}
	id, err := NewID()
	if err != nil {
		return nil, fmt.Errorf("new session id: %w", err)
	}
	sess.ID = id
	sess.WorkspaceURL = s.URL(id)
	if sess.Password, err = newPassword(); err != nil {
		return nil, err
	}
	return sess, nil
}

// defaultConnectedMax is the cap of a session that asks for none: the deployment's, raised to
// the session's idle timeout when that is longer (a cap below it is refused when asked for).
func defaultConnectedMax(def time.Duration, idle Duration) Duration {
	if def > 0 && idle.D() > def {
		return idle
	}
	return Duration(def)
}

// checkGrowth refuses an update that shrinks the volume: a volume only grows (files would be
// lost). The rest of an update is checked before the lock (UpdateRequest.Check).
func checkGrowth(old, sess *Session) error {
	size, err := ParseQuantity("storage", sess.Storage)
	if err != nil {
		return err
	}
	if was, err := ParseQuantity("storage", old.Storage); err == nil && size.Cmp(was) < 0 {
		return Invalid("storage", "storage cannot shrink from %s to %s: a volume only grows (files would be lost)", old.Storage, sess.Storage)
	}
	return nil
}

// reserve stores the new record under a free id, holding the id's lock, and returns the
// context for the work under it and the func that ends it (see lock). On a collision it
// draws another id, unless the id was promised to an idempotency key already.
func (s *Service) reserve(ctx context.Context, sess *Session, fixedID bool) (context.Context, func(), error) {
	for attempt := 0; attempt < s.opts.MaxIDRetries; attempt++ {
		lctx, end, err := s.lock(ctx, sess.ID, 0)
		if err == nil {
			stored := sess.Clone()
			stored.Password = ""
			ok, err := s.store.Reserve(lctx, lockOf(lctx), stored)
			if err != nil {
				end()
				return nil, nil, err
			}
			if ok {
				return lctx, end, nil
			}
			end()
		} else if !errors.Is(err, ErrBusy) {
			return nil, nil, err
		}
		if fixedID {
			return nil, nil, &Error{Kind: KindInternal, Message: "session id claimed by the request id is taken"}
		}
		s.log.Warn("session id collision, drawing another", "id", sess.ID)
		id, err := NewID()
		if err != nil {
			return nil, nil, fmt.Errorf("new session id: %w", err)
		}
		sess.ID, sess.WorkspaceURL = id, s.URL(id)
	}
	return nil, nil, &Error{Kind: KindInternal, Message: fmt.Sprintf("no free session id after %d attempts", s.opts.MaxIDRetries)}
}

// resumeCreate answers a retried create (same request id): it completes the session the first
// attempt started, and returns it with its password.
func (s *Service) resumeCreate(ctx context.Context, id string) (*Session, error) {
	sess, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if pw, err := s.cluster.Password(ctx, id); err == nil {
		sess.Password = pw
	}
	return sess, nil
}

// applyNew applies a freshly reserved session's objects and records the outcome. The caller
// holds the lock. A failure leaves the record in PendingApply: the next touch re-applies.
func (s *Service) applyNew(ctx context.Context, sess *Session) error {
	start := s.opts.Now()
	ws := s.workspace(sess, sess.Password)
	// A fresh id: nothing of it was applied before. A restore's volume is filled by its Job.
	ws.NewVolume = !sess.restoring()
	if err := s.cluster.Apply(ctx, ws); err != nil {
		return fmt.Errorf("applying session %s: %w", sess.ID, err)
	}
	password := sess.Password
	s.await(sess, s.afterApply(sess))
	if err := s.put(ctx, sess); err != nil {
		return err
	}
	if err := s.store.Touch(ctx, sess.ID, sess.CreatedAt); err != nil {
		s.log.Warn("recording activity", "id", sess.ID, "err", err)
	}
	s.log.Info("session created", "id", sess.ID, "user_id", sess.UserID, "state", sess.State, "took", s.opts.Now().Sub(start))
	sess.Password = password
	return nil
}

// workspace is the desired cluster shape of sess.
func (s *Service) workspace(sess *Session, password string) Workspace {
	replicas := int32(1)
	if sess.State == StateSleeping || sess.State == StateDeleting || sess.State == StateDeleted || sess.restoring() {
		replicas = 0 // a workspace whose volume is still being filled does not start
	}
	return Workspace{
		ID: sess.ID, UserID: sess.UserID, Image: sess.Image, Storage: sess.Storage, CPU: sess.CPU,
		Memory: sess.Memory, Labels: sess.Labels, Replicas: replicas, Password: password,
		CreatedAt: sess.CreatedAt, IdleTimeout: sess.IdleTimeout.D(),
		// Only a running workspace serves its own host: until then (creating, waking,
		// sleeping) the activator answers it.
		Activator: sess.State != StateRunning,
	}
}

// route points the workspace's Ingress where sess's state says: at the workspace when it
// runs, at the activator otherwise.
func (s *Service) route(ctx context.Context, sess *Session) error {
	if err := s.cluster.Route(ctx, s.workspace(sess, "")); err != nil {
		return fmt.Errorf("routing session %s: %w", sess.ID, err)
	}
	return nil
}

// Get returns the session, first driving its pending step forward when it has one.
func (s *Service) Get(ctx context.Context, id string) (*Session, error) {
	sess, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if sess.Pending == PendingNone {
		return sess, nil
	}
	ctx, end, err := s.lock(ctx, id, 0)
	if errors.Is(err, ErrBusy) {
		return sess, nil // someone else is moving it: report what the record says
	} else if err != nil {
		return nil, err
	}
	defer end()
	if sess, err = s.store.Get(ctx, id); err != nil { // re-read under the lock
		return nil, cut(ctx, err)
	}
	if err := s.advance(ctx, sess); err != nil {
		return nil, cut(ctx, err)
	}
	return sess, nil
}

// Await is Get that waits while the session is starting (Manager.Await); each read drives its
// step forward as Get does. With a Cluster that watches pods (PodWatcher) it reads again when
// the session's pods change, and every AwaitFallback besides (what a watch cannot see: its
// Deployment); otherwise every AwaitInterval. The watch starts before the first read when the
// record says the session is starting, so nothing that read missed goes unsignalled; a pod the
// watch saw Ready needs no read of the cluster (WatchedReady), and while the watch knows the
// pods to be starting still (WatchedStarting) the first read waits for them. The wait is the
// caller's (a request's) own: nothing runs after it returns.
func (s *Service) Await(ctx context.Context, id string, wait time.Duration) (*Session, error) {
	deadline := time.Now().Add(min(wait, MaxAwait))
	pace, changed := s.opts.AwaitInterval, (<-chan struct{})(nil)
	read := true // whether to read now, or wait first
	if w, ok := s.cluster.(PodWatcher); ok {
		if sess, err := s.load(ctx, id); err == nil && sess.Starting() {
			ch, stop, err := w.WatchPods(ctx, id)
			if err == nil {
				defer stop()
				pace, changed = max(pace, s.opts.AwaitFallback), ch
				// A pod the watch knows to be starting is what a read would find: the
				// first read waits for its change (or the fallback, which also looks at
				// what a pod watch cannot see, the Deployment).
				read = sess.Pending != PendingReady || !w.WatchedStarting(id)
			} else {
				s.log.Debug("waiting without a pod watch", "id", id, "err", err)
			}
		}
	}
	for {
		if read {
			sess, err := s.Get(ctx, id)
			if err != nil || !sess.Starting() || !time.Now().Before(deadline) {
				return sess, err
			}
		}
		read = true
		t := time.NewTimer(min(pace, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for session %s: %w", id, context.Cause(ctx))
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// Advance drives session id's pending step forward (the sweep calls it for every pending
// session it finds). It is Get without the answer.
func (s *Service) Advance(ctx context.Context, id string) error {
	_, err := s.Get(ctx, id)
	return err
}

// advance moves sess along its pending step as far as the cluster allows now. The caller
// holds the lock.
func (s *Service) advance(ctx context.Context, sess *Session) error {
	for range 4 { // a step may complete several in a row (apply → ready)
		before := sess.Pending
		var err error
		switch sess.Pending {
		case PendingNone:
			return nil
		case PendingApply:
			err = s.stepApply(ctx, sess)
		case PendingReady:
			err = s.stepReady(ctx, sess)
		case PendingBackup:
			err = s.stepBackup(ctx, sess)
		case PendingRemoval:
			err = s.stepRemoval(ctx, sess)
		case PendingRestore:
			err = s.stepRestore(ctx, sess)
		default:
			return fmt.Errorf("session %s: unknown pending step %q", sess.ID, sess.Pending)
		}
		if err != nil || sess.Pending == before {
			return err
		}
	}
	return nil
}

// stepApply re-applies a create that did not finish (a crash or a cancelled request).
func (s *Service) stepApply(ctx context.Context, sess *Session) error {
	pw, err := newPassword() // used only when the Secret is missing
	if err != nil {
		return err
	}
	if err := s.cluster.Apply(ctx, s.workspace(sess, pw)); err != nil {
		return fmt.Errorf("re-applying session %s: %w", sess.ID, err)
	}
	s.await(sess, s.afterApply(sess))
	return s.put(ctx, sess)
}

// afterApply is the step a session waits in once its objects are applied: its restore, while
// its volume is not filled yet; nothing, asleep; else its pod.
func (s *Service) afterApply(sess *Session) Pending {
	switch {
	case sess.restoring() && sess.State == StateFailed:
		return PendingNone // a failed restore waits for a wake (which tries again) or a delete
	case sess.restoring():
		return PendingRestore
	case sess.State == StateSleeping:
		return PendingNone
	}
	return PendingReady
}

// stepReady waits for the pod of a created or woken session.
func (s *Service) stepReady(ctx context.Context, sess *Session) error {
	if w, ok := s.cluster.(PodWatcher); ok && w.WatchedReady(s.workspace(sess, "")) {
		return s.ready(ctx, sess) // someone waits on it, and its pod watch saw the pod Ready
	}
	obs, err := s.cluster.Readiness(ctx, sess.ID)
	if err != nil {
		return fmt.Errorf("observing session %s: %w", sess.ID, err)
	}
	if !obs.Has("Deployment") { // lost (deleted out of band, or never applied): apply again
		s.await(sess, PendingApply)
		return s.put(ctx, sess)
	}
	if obs.DesiredReplicas == 0 {
		// Scaled to zero behind the record's back (out of band, or a sleep whose call landed
		// after its deadline): a session on its way up scales up again rather than wait forever.
		if err := s.cluster.Scale(ctx, sess.ID, 1); err != nil {
			return fmt.Errorf("scaling session %s back to 1: %w", sess.ID, err)
		}
		return nil
	}
	if !obs.Ready {
		if obs.PodProblem != sess.Reason {
			sess.Reason = obs.PodProblem
			return s.put(ctx, sess)
		}
		return nil
	}
	return s.ready(ctx, sess)
}

// ready records that the pod of a created or woken session is ready: it runs.
func (s *Service) ready(ctx context.Context, sess *Session) error {
	from := sess.State
	if from != StateRunning {
		// The host goes back to the workspace before anyone is told it runs, so the waking
		// page never sends the browser to a pod that is not ready (a 502). A failure leaves
		// the session waiting here: the next touch routes again.
		running := sess.Clone()
		running.State = StateRunning
		if err := s.route(ctx, running); err != nil {
			return err
		}
	}
	// The idle timeout counts from when the workspace could first be used: a pod that took
	// minutes to start (a cold node, an image pull) has not been idle all that time. A fresh
	// code-server reports no heartbeat ({"status":"expired","lastHeartbeat":0}) until a
	// browser connects, so this is the activity the sweep compares with.
	now := s.opts.Now().UTC()
	if now.After(sess.LastActivity) {
		sess.LastActivity = now
	}
	sess.State, sess.Reason = StateRunning, ""
	s.await(sess, PendingNone)
	if err := s.put(ctx, sess); err != nil {
		return err
	}
	if err := s.store.Touch(ctx, sess.ID, sess.LastActivity); err != nil {
		s.log.Warn("recording activity", "id", sess.ID, "err", err)
	}
	ev := "ready"
	if from == StateWaking {
		ev = "woke"
	}
	s.record(ctx, sess, ev, from, "")
	return nil
}

// stepBackup follows a delete's backup Job: it starts once the workspace's pod is gone; on
// success the objects go, on failure the session is marked failed and keeps its volume.
func (s *Service) stepBackup(ctx context.Context, sess *Session) error {
	b, err := s.cluster.BackupStatus(ctx, sess.ID, sess.Attempt)
	if err != nil {
		return fmt.Errorf("backup status of session %s: %w", sess.ID, err)
	}
	switch b.Phase {
	case BackupRunning:
		return nil
	case BackupMissing: // not started yet, or cleaned up before we saw it finish: run it (again)
		if gone, err := s.workspaceGone(ctx, sess); err != nil || !gone {
			return err
		}
		if b, err = s.cluster.StartBackup(ctx, sess.ID, sess.Attempt); errors.Is(err, ErrNotFound) {
			// No volume to back up (removed out of band): nothing is left to lose, and
			// waiting for it would wedge the delete. The rest goes.
			s.log.Error("no volume to back up; removing the session's objects", "id", sess.ID, "err", err)
			s.record(ctx, sess, "backup_skipped", StateDeleting, "the volume was already gone")
			return s.removeObjects(ctx, sess)
		} else if err != nil {
			return fmt.Errorf("starting backup of session %s: %w", sess.ID, err)
		}
		if b.Location != "" {
			sess.BackupLocation = b.Location
		}
		if err := s.put(ctx, sess); err != nil {
			return err
		}
		// durable too: a rebuild from the records (reconcile) knows where the zip goes
		s.record(ctx, sess, "backup_started", StateDeleting, b.Location)
		return nil
	case BackupFailed:
		sess.BackupFailures++
		sess.State = StateFailed
		s.await(sess, PendingNone)
		sess.Reason = fmt.Sprintf("backup failed (attempt %d of %d), the volume was kept: %s",
			sess.BackupFailures, s.opts.MaxBackupAttempts, b.Reason)
		if err := s.put(ctx, sess); err != nil {
			return err
		}
		s.record(ctx, sess, "backup_failed", StateDeleting, b.Reason)
		s.log.Error("backup failed; volume kept", "id", sess.ID, "attempt", sess.Attempt,
			"failures", sess.BackupFailures, "reason", b.Reason)
		return nil
	case BackupSucceeded:
		sess.BackupLocation = b.Location
		// in the catalog before the volume goes: an archive nobody can find is lost too
		if err := s.catalog(ctx, sess, b); err != nil {
			return err
		}
		s.record(ctx, sess, "backup_done", StateDeleting, b.Location)
		return s.removeObjects(ctx, sess)
	}
	return fmt.Errorf("session %s: unknown backup phase %q", sess.ID, b.Phase)
}

// workspaceGone reports whether the workspace of a deleting session has no pod left: the
// backup must not read a volume that code-server may still write to as it shuts down. A pod
// that came back (the Deployment scaled up out of band) is scaled away again.
func (s *Service) workspaceGone(ctx context.Context, sess *Session) (bool, error) {
	obs, err := s.cluster.Readiness(ctx, sess.ID)
	if err != nil {
		return false, fmt.Errorf("observing session %s: %w", sess.ID, err)
	}
	if obs.Has(ObjectDeployment) && obs.DesiredReplicas > 0 {
		// a ReadWriteOnce volume: the pod lets go of it first
		if err := s.cluster.Scale(ctx, sess.ID, 0); err != nil {
			return false, fmt.Errorf("scaling session %s to 0 for its backup: %w", sess.ID, err)
		}
		if obs, err = s.cluster.Readiness(ctx, sess.ID); err != nil {
			return false, fmt.Errorf("observing session %s: %w", sess.ID, err)
		}
	}
	return obs.Pods == 0, nil
}

// removeObjects deletes every object of the session, its volume included. The removal is
// recorded first: a delete that fails half-way (one object refused, the volume already gone)
// leaves the session in PendingRemoval, which the next touch resumes, never in a step that
// looks for a volume or a backup Job that no longer exist.
func (s *Service) removeObjects(ctx context.Context, sess *Session) error {
	s.await(sess, PendingRemoval)
	if err := s.put(ctx, sess); err != nil {
		return err
	}
	if err := s.cluster.DeleteWorkspace(ctx, sess.ID, true); err != nil {
		return fmt.Errorf("deleting session %s: %w", sess.ID, err)
	}
	return nil
}

// stepRemoval waits for the deleted objects to be gone, then leaves a tombstone.
func (s *Service) stepRemoval(ctx context.Context, sess *Session) error {
	obs, err := s.cluster.Observe(ctx, sess.ID)
	if err != nil {
		return fmt.Errorf("observing session %s: %w", sess.ID, err)
	}
	if obs.Exists() {
		// deletions are idempotent: ask again, so something that could not go on the first
		// call (a volume still held by a finishing backup pod) goes now
		if err := s.cluster.DeleteWorkspace(ctx, sess.ID, true); err != nil {
			return fmt.Errorf("deleting session %s: %w", sess.ID, err)
		}
		return nil
	}
	sess.State, sess.Reason = StateDeleted, ""
	s.await(sess, PendingNone)
	if err := s.put(ctx, sess); err != nil {
		return err
	}
	s.record(ctx, sess, "deleted", StateDeleting, sess.BackupLocation)
	return nil
}

// List returns a page of sessions.
func (s *Service) List(ctx context.Context, opts ListOptions) (*ListResult, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	return s.store.List(ctx, opts)
}

// Sleep scales the workspace to zero; its volume stays. Sleeping a sleeping session is a
// no-op success.
func (s *Service) Sleep(ctx context.Context, id string) (*Session, error) {
	return s.transition(ctx, id, func(ctx context.Context, sess *Session) error { return s.sleep(ctx, sess) })
}

// SleepReason is why the idle sweep put a workspace to sleep: the Detail of its "slept" event,
// so that usage can tell the two tiers apart.
type SleepReason string

// The reasons.
const (
	// SleepIdle: no use and no tab connected for the idle timeout (the heartbeat rule).
	SleepIdle SleepReason = "idle"
	// SleepConnectedCap: a tab still connected, but no real use for idle_connected_max.
	SleepConnectedCap SleepReason = "connected_cap"
)

// SleepIfIdle puts the session to sleep only if, under its lock, it is running and idle at
// now for reason: its last activity plus its idle timeout at or before now, and for
// SleepConnectedCap its last activity plus its idle_connected_max (not 0) too. Activity that
// lands between the idle sweep's probe and this call keeps the workspace awake. The reason is
// recorded on the "slept" event. It reports whether it slept.
func (s *Service) SleepIfIdle(ctx context.Context, id string, now time.Time, reason SleepReason) (bool, error) {
	switch reason {
	case SleepIdle, SleepConnectedCap:
	default:
		return false, &Error{Kind: KindInternal, Message: fmt.Sprintf("session %s: unknown sleep reason %q", id, reason)}
	}
	slept := false
	_, err := s.transition(ctx, id, func(ctx context.Context, sess *Session) error {
		if sess.State != StateRunning || !IdleFor(sess, now, reason) {
			return nil
		}
		slept = true
		return s.sleepFor(ctx, sess, string(reason))
	})
	return slept && err == nil, err
}

// IdleFor reports whether sess, by its recorded activity, may sleep at now for reason (the
// rule SleepIfIdle applies under the lock; the sweep's probe decides which reason).
func IdleFor(sess *Session, now time.Time, reason SleepReason) bool {
	if sess.IdleTimeout <= 0 || sess.LastActivity.Add(sess.IdleTimeout.D()).After(now) {
		return false
	}
	if reason == SleepConnectedCap {
		return sess.IdleConnectedMax > 0 && !sess.LastActivity.Add(sess.IdleConnectedMax.D()).After(now)
	}
	return true
}

// sleep scales the workspace of sess to zero and routes its host to the activator. The
// caller holds the lock.
func (s *Service) sleep(ctx context.Context, sess *Session) error { return s.sleepFor(ctx, sess, "") }

// sleepFor is sleep with the detail its "slept" event records (why, when the sweep slept it).
func (s *Service) sleepFor(ctx context.Context, sess *Session, detail string) error {
	switch sess.State {
	case StateSleeping:
		s.routeAsleep(ctx, sess) // a repeated sleep repairs the route
		return nil
	case StateDeleting, StateDeleted:
		return Conflict("session %s is %s: it cannot sleep", sess.ID, sess.State)
	}
	if sess.restoring() {
		return restoringConflict(sess, "sleep")
	}
	from := sess.State
	if err := s.intend(ctx, sess, StateSleeping); err != nil {
		return err
	}
	if err := s.scale(ctx, sess, 0); err != nil {
		return err
	}
	s.routeAsleep(ctx, sess)
	if err := s.put(ctx, sess); err != nil {
		return err
	}
	s.record(ctx, sess, "slept", from, detail)
	return nil
}

// routeAsleep sends a sleeping workspace's host to the activator. It is best effort: the
// workspace is asleep either way, and with the route left on it a visitor gets the ingress
// controller's 503 (as before wake on access) until the next sleep or wake routes it.
func (s *Service) routeAsleep(ctx context.Context, sess *Session) {
	if err := s.route(ctx, sess); err != nil {
		s.log.Warn("routing a sleeping workspace to the activator", "id", sess.ID, "err", err)
	}
}

// Wake scales the workspace back to one; Get reports running once the pod is ready. Waking a
// running or waking session is a no-op success.
func (s *Service) Wake(ctx context.Context, id string) (*Session, error) {
	return s.transition(ctx, id, func(ctx context.Context, sess *Session) error {
		switch sess.State {
		case StateRunning:
			if sess.Pending != PendingNone {
				return s.advance(ctx, sess)
			}
			// Waking a running session asks whether it really runs: a scale to zero that
			// landed behind the record's back (out of band, or a call delivered just before
			// its instance froze) would otherwise leave it "running" with no pod for good.
			obs, err := s.cluster.Readiness(ctx, sess.ID)
			if err != nil {
				return fmt.Errorf("observing session %s: %w", sess.ID, err)
			}
			if !obs.Has(ObjectDeployment) || obs.DesiredReplicas > 0 {
				return nil
			}
			s.log.Warn("a running session had no replicas; waking it", "id", sess.ID)
		case StateWaking, StateCreating:
			return s.advance(ctx, sess)
		case StateDeleting, StateDeleted:
			return Conflict("session %s is %s: it cannot wake", id, sess.State)
		}
		if sess.restoring() { // its restore failed: try it again
			return s.retryRestore(ctx, sess)
		}
		from := sess.State
		sess.BackupFailures = 0 // its user may have fixed what made the backup fail
		now := s.opts.Now().UTC()
		sess.LastActivity = now
		// the running counts are checked with the write of waking under one lock
		if err := s.withQuota(ctx, sess.UserID, false, true, func() error { return s.intend(ctx, sess, StateWaking) }); err != nil {
			return err
		}
		if err := s.scale(ctx, sess, 1); err != nil {
			return err
		}
		if err := s.put(ctx, sess); err != nil {
			return err
		}
		if err := s.store.Touch(ctx, sess.ID, now); err != nil {
			s.log.Warn("recording activity", "id", sess.ID, "err", err)
		}
		s.record(ctx, sess, "wake_started", from, "")
		// No readiness read here: a pod is not Ready a moment after its scale. The next
		// read (the caller's status, held or polled) looks.
		return nil
	})
}

// intend records where a transition goes before it touches the cluster: sess in state, with
// the pending step (await-apply) that makes the cluster follow the record. A crash after this
// write leaves a step the next touch or sweep finishes (it applies the workspace as state
// wants it); a crash before it leaves the session as it was, in the cluster too.
func (s *Service) intend(ctx context.Context, sess *Session, state State) error {
	sess.State, sess.Reason = state, ""
	s.await(sess, PendingApply)
	return s.put(ctx, sess)
}

// scale sets the workspace's replicas and the matching pending step. When the Deployment is
// missing (a create that never finished, or an out-of-band delete) the whole workspace is
// applied again instead.
func (s *Service) scale(ctx context.Context, sess *Session, replicas int32) error {
	if replicas > 0 {
		s.await(sess, PendingReady)
	} else {
		s.await(sess, PendingNone)
	}
	err := s.cluster.Scale(ctx, sess.ID, replicas)
	if err == nil {
		return nil
	}
	obs, oerr := s.cluster.Observe(ctx, sess.ID)
	if oerr != nil || obs.Complete {
		return fmt.Errorf("scaling session %s to %d: %w", sess.ID, replicas, err)
	}
	pw, perr := newPassword()
	if perr != nil {
		return perr
	}
	if err := s.cluster.Apply(ctx, s.workspace(sess, pw)); err != nil {
		return fmt.Errorf("re-applying session %s: %w", sess.ID, err)
	}
	return nil
}

// Update changes a workspace in place: image, resources, a larger volume, idle timeout and
// idle_connected_max, lifetime (ttl, from its creation), backup choice and labels. Shrinking the volume is refused.
func (s *Service) Update(ctx context.Context, id string, req UpdateRequest) (*Session, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	return s.transition(ctx, id, func(ctx context.Context, sess *Session) error {
		switch sess.State {
		case StateDeleting, StateDeleted:
			return Conflict("session %s is %s: it cannot change", id, sess.State)
		}
		if sess.restoring() {
			return restoringConflict(sess, "change")
		}
		old := sess.Clone()
		for _, f := range []struct {
			in  *string
			out *string
		}{{req.Image, &sess.Image}, {req.Storage, &sess.Storage}, {req.CPU, &sess.CPU}, {req.Memory, &sess.Memory}} {
			if f.in != nil {
				*f.out = strings.TrimSpace(*f.in)
			}
		}
		if req.IdleTimeout != nil {
			sess.IdleTimeout = *req.IdleTimeout
		}
		if req.IdleConnectedMax != nil {
			sess.IdleConnectedMax = *req.IdleConnectedMax
		}
		if sess.IdleTimeout != old.IdleTimeout || sess.IdleConnectedMax != old.IdleConnectedMax {
			if err := CheckIdlePair(sess.IdleTimeout, sess.IdleConnectedMax); err != nil {
				return err
			}
		}
		if req.BackupOnDelete != nil {
			sess.BackupOnDelete = *req.BackupOnDelete
		}
		if req.Labels != nil {
			sess.Labels = maps.Clone(req.Labels)
		}
		if req.TTL != nil {
			sess.ExpiresAt = ExpiresAt(sess.CreatedAt, *req.TTL)
		}
		if err := checkGrowth(old, sess); err != nil {
			return err
		}
		if err := s.checkMaximums(old, sess); err != nil {
			return err
		}
		if sess.Image != old.Image || sess.Storage != old.Storage || sess.CPU != old.CPU ||
			sess.Memory != old.Memory || !maps.Equal(sess.Labels, old.Labels) || sess.IdleTimeout != old.IdleTimeout {
			pw, err := newPassword()
			if err != nil {
				return err
			}
			if err := s.cluster.Apply(ctx, s.workspace(sess, pw)); err != nil {
				return fmt.Errorf("updating session %s: %w", id, err)
			}
			if sess.State == StateRunning && (sess.Image != old.Image || sess.CPU != old.CPU || sess.Memory != old.Memory) {
				s.await(sess, PendingReady) // a new pod rolls out
			}
		}
		if err := s.put(ctx, sess); err != nil {
			return err
		}
		s.record(ctx, sess, "updated", old.State, "")
		return nil
	})
}

// Delete backs the workspace's volume up (unless asked not to) and then removes every object.
// The backup runs as a Job: Delete returns with the session deleting, and later calls (Get,
// Delete again, the sweep) finish it. Deleting a deleted session is a no-op success; deleting
// a failed one (a failed backup) tries again.
func (s *Service) Delete(ctx context.Context, id string, opts DeleteOptions) (*Session, error) {
	return s.transition(ctx, id, func(ctx context.Context, sess *Session) error {
		switch sess.State {
		case StateDeleted:
			return nil
		case StateDeleting:
			if opts.SkipBackup && sess.Pending == PendingBackup {
				return s.skipBackup(ctx, sess)
			}
			return s.advance(ctx, sess)
		}
		// A volume whose restore never finished holds nothing of its user's that its archive
		// does not: it goes without a backup (the archive stays).
		backup := sess.BackupOnDelete && !opts.SkipBackup && !sess.restoring()
		if backup && sess.State == StateFailed && sess.BackupFailures >= s.opts.MaxBackupAttempts {
			return Conflict("session %s: its backup failed %d times (%s); wake it and fix what the reason names, "+
				"or delete it with skip_backup to remove it without a backup", id, sess.BackupFailures, sess.Reason)
		}
		from := sess.State
		sess.State, sess.Reason = StateDeleting, ""
		// The delete is recorded before the cluster is touched (a crash in between must not
		// leave a session that says it runs with no pod): the backup step scales the workspace
		// down, and the removal deletes it.
		if backup {
			// The backup starts once the pod is gone (stepBackup): now, when the workspace
			// was asleep; on a later touch or sweep, when its pod still shuts down.
			sess.Attempt++
			s.await(sess, PendingBackup)
			if err := s.put(ctx, sess); err != nil {
				return err
			}
		} else if err := s.removeObjects(ctx, sess); err != nil {
			return err
		}
		s.record(ctx, sess, "delete_started", from, "")
		return s.advance(ctx, sess)
	})
}

// Repair makes the cluster follow the record of a session that is running or sleeping with
// nothing pending, when it has drifted (reconcile finds such sessions: a sleeping one whose
// Deployment has replicas, a running one with none, left by a call that landed after its
// instance lost the session's lock, or by a change made by hand). It applies the workspace as
// the record wants it (replicas, route) through the apply step. Other sessions are driven as
// Get drives them. It reports the session after it.
func (s *Service) Repair(ctx context.Context, id string) (*Session, error) {
	return s.transition(ctx, id, func(ctx context.Context, sess *Session) error {
		if sess.Pending == PendingNone && (sess.State == StateRunning || sess.State == StateSleeping) {
			s.log.Warn("repairing a session whose objects drifted from its record", "id", sess.ID, "state", sess.State)
			s.await(sess, PendingApply)
			if err := s.put(ctx, sess); err != nil {
				return err
			}
		}
		return s.advance(ctx, sess)
	})
}

// skipBackup answers a delete with skip_backup on a session whose delete waits for its
// backup: a backup that has not started (or cannot: its Job is refused) is skipped and the
// objects go now, so a backup that can never run does not hold the session for good. A backup
// that is running is left to finish (its archive is kept), and one that succeeded is followed.
func (s *Service) skipBackup(ctx context.Context, sess *Session) error {
	b, err := s.cluster.BackupStatus(ctx, sess.ID, sess.Attempt)
	if err != nil {
		return fmt.Errorf("backup status of session %s: %w", sess.ID, err)
	}
	if b.Phase == BackupRunning || b.Phase == BackupSucceeded {
		return s.advance(ctx, sess)
	}
	s.record(ctx, sess, "backup_skipped", StateDeleting, "skipped on request")
	return s.removeObjects(ctx, sess)
}

// transition runs fn on the session under its lock (with the context of the work under it)
// and returns the session after it.
func (s *Service) transition(ctx context.Context, id string, fn func(context.Context, *Session) error) (*Session, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	ctx, end, err := s.lock(ctx, id, s.opts.LockWait)
	if err != nil {
		return nil, err
	}
	defer end()
	sess, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, cut(ctx, err)
	}
	if sess.Pending == PendingApply { // finish an interrupted create before anything else
		if err := s.stepApply(ctx, sess); err != nil {
			return nil, cut(ctx, err)
		}
	}
	if err := fn(ctx, sess); err != nil {
		return nil, cut(ctx, err)
	}
	return sess, nil
}

// await sets sess's pending step (see Session.Await).
func (s *Service) await(sess *Session, p Pending) { sess.Await(p, s.opts.Now().UTC()) }

// put writes the record (never the password) with a fresh UpdatedAt, fenced by the lock the
// work with ctx holds.
func (s *Service) put(ctx context.Context, sess *Session) error {
	l := lockOf(ctx)
	if l == nil {
		return &Error{Kind: KindInternal, Message: fmt.Sprintf("session %s: a write outside the session's lock", sess.ID)}
	}
	sess.UpdatedAt = s.opts.Now().UTC()
	stored := sess.Clone()
	stored.Password = ""
	if err := s.store.Put(ctx, l, stored); err != nil {
		return fmt.Errorf("saving session %s: %w", sess.ID, err)
	}
	return nil
}

// record writes a durable event; a failure is logged (internal/events queues it for reconcile).
func (s *Service) record(ctx context.Context, sess *Session, typ string, from State, detail string) {
	if s.opts.Recorder == nil {
		return
	}
	ev := Event{
		SessionID: sess.ID, UserID: sess.UserID, Type: typ, From: from, To: sess.State,
		Actor: ActorOf(ctx), At: s.opts.Now().UTC(), Detail: detail, Session: sess.Clone(),
	}
	ev.Session.Password = ""
	if err := s.opts.Recorder.Record(ctx, ev); err != nil {
		s.log.Error("recording event", "id", sess.ID, "type", typ, "err", err)
	}
}

func orDefault(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return strings.TrimSpace(v)
}

// newPassword returns a random IDE password (24 URL-safe characters, 144 bits).
func newPassword() (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Touch records activity on a session now (a client's activity ping). Activity on a session
// that is not awake is accepted and recorded, but wakes nothing.
func (s *Service) Touch(ctx context.Context, id string) (*Session, error) {
	sess, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if sess.State == StateDeleted || sess.State == StateDeleting {
		return nil, Conflict("session %s is %s", id, sess.State)
	}
	now := s.opts.Now().UTC()
	if err := s.store.Touch(ctx, id, now); err != nil {
		return nil, err
	}
	if now.After(sess.LastActivity) {
		sess.LastActivity = now
	}
	return sess, nil
}

// load checks id and reads its record.
func (s *Service) load(ctx context.Context, id string) (*Session, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	return s.store.Get(ctx, id)
}
