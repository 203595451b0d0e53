package session

import (
	"context"
	"time"
)

// Workspace is the desired shape of one session's Kubernetes objects: what internal/kube
// builds its PVC, Deployment, Service, route (Ingress or HTTPRoute), NetworkPolicy and Secret
// from.
type Workspace struct {
	ID       string
	UserID   string
	Image    string
	Storage  string // a resource quantity, e.g. "5Gi"
	CPU      string // request, e.g. "250m"
	Memory   string // request, e.g. "256Mi"
	Labels   map[string]string
	Replicas int32
	// Password is written to the session's Secret only when that Secret does not exist yet:
	// an existing password is never replaced.
	Password string
	// CreatedAt is recorded in an annotation, so Kubernetes alone can rebuild the session.
	CreatedAt time.Time
	// IdleTimeout is recorded in an annotation for the same reason.
	IdleTimeout time.Duration
	// Activator sends the workspace's host to the activator instead of its own Service: set
	// while the session is not running, so opening its URL shows the waking page (or asks for
	// the password) instead of an error. internal/kube ignores it when wake on access is off.
	Activator bool
	// NewVolume says the session's data claim does not exist yet and will hold nothing to
	// begin with (a create, not a restore): the cluster may bind it to a volume provisioned
	// ahead of time (a warm volume) instead of provisioning one. Only the create's first apply
	// sets it; a retry, a wake or an update never does.
	NewVolume bool
}

// Observed is what the cluster holds for one session.
type Observed struct {
	ID     string
	UserID string // from the owner annotation
	Labels map[string]string
	// Created is the oldest labelled object's creation time.
	Created time.Time
	// IdleTimeout is read back from the Deployment's annotation (0 when absent).
	IdleTimeout time.Duration
	// Kinds present among the session's objects, in KindOrder.
	Kinds []ObjectKind
	// Complete is true when all six kinds are present, the route an Ingress or an HTTPRoute
	// (WorkspaceKinds or GatewayWorkspaceKinds): a session is whole whichever way it is routed.
	Complete bool
	// Reroute is true when the session's route objects are not the ones the cluster's routing
	// wants (an Ingress left over after a move to a Gateway, a route missing beside a
	// workspace, or a route on the activator without wake on access): applying the workspace
	// again puts them right without touching the rest.
	Reroute bool
	// Deployment, as observed.
	DesiredReplicas int32
	ReadyReplicas   int32
	// Pods counts the session's workspace pods that exist (terminating ones included).
	Pods int
	// Ready is true when the Deployment is rolled out at its current generation with a Ready pod.
	Ready bool
	// PodProblem explains why a pod cannot become ready (ImagePullBackOff, Unschedulable, ...).
	PodProblem string
	// PVCPhase is the claim's phase ("Bound", "Pending", "Lost"), "" when there is no claim.
	PVCPhase string
	// Storage is the claim's requested size; Image, CPU and Memory the Deployment's.
	Storage string
	Image   string
	CPU     string
	Memory  string
}

// ObjectKind is the Kubernetes kind of one of a session's objects.
type ObjectKind string

// The kinds of a session's objects.
const (
	ObjectPVC        ObjectKind = "PersistentVolumeClaim"
	ObjectDeployment ObjectKind = "Deployment"
	ObjectService    ObjectKind = "Service"
	ObjectIngress    ObjectKind = "Ingress"
	// ObjectHTTPRoute is a session's Gateway API route, in place of its Ingress when the
	// deployment routes through a Gateway (internal/kube's routing mode "gateway").
	ObjectHTTPRoute     ObjectKind = "HTTPRoute"
	ObjectNetworkPolicy ObjectKind = "NetworkPolicy"
	ObjectSecret        ObjectKind = "Secret"
	// ObjectJob is a backup Job: labelled as the session's, but not part of its workspace.
	ObjectJob ObjectKind = "Job"
)

// WorkspaceKinds are the six kinds of a complete session routed by an Ingress, in the order
// Observed.Kinds lists them.
var WorkspaceKinds = []ObjectKind{ObjectPVC, ObjectDeployment, ObjectService, ObjectIngress, ObjectNetworkPolicy, ObjectSecret}

// GatewayWorkspaceKinds are the six kinds of a complete session routed by an HTTPRoute.
var GatewayWorkspaceKinds = []ObjectKind{ObjectPVC, ObjectDeployment, ObjectService, ObjectHTTPRoute, ObjectNetworkPolicy, ObjectSecret}

// KindOrder is the order Observed.Kinds lists kinds in: a session moving from one routing to
// the other may hold both route kinds for a while.
var KindOrder = []ObjectKind{ObjectPVC, ObjectDeployment, ObjectService, ObjectIngress, ObjectHTTPRoute, ObjectNetworkPolicy, ObjectSecret}

// Has reports whether the observed objects include kind.
func (o *Observed) Has(kind ObjectKind) bool {
	for _, k := range o.Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// Exists reports whether any labelled object of the session is still in the cluster.
func (o *Observed) Exists() bool { return len(o.Kinds) > 0 }

// BackupPhase is where a backup Job is.
type BackupPhase string

// The backup phases.
const (
	BackupMissing   BackupPhase = "missing" // no Job for this attempt
	BackupRunning   BackupPhase = "running"
	BackupSucceeded BackupPhase = "succeeded"
	BackupFailed    BackupPhase = "failed"
)

// Backup is the outcome of one backup attempt; restore and archive removal Jobs report theirs
// in it too (Location and Bytes are a backup's alone).
type Backup struct {
	Phase    BackupPhase
	Location string // where the zip is (or will be), e.g. "pvc://hyperbola-backups/ab12cd34/ab12cd34-20261126T020304Z.zip"
	Reason   string // why it failed
	Bytes    int64  // the archive's size, once a backup succeeded
}

// Cluster is everything the session core needs from Kubernetes (internal/kube implements it).
// Every method is idempotent: a retry after a crash converges.
type Cluster interface {
	// Apply creates or updates every object of the workspace with server-side apply.
	Apply(ctx context.Context, ws Workspace) error
	// Route applies the workspace's route alone (its Ingress or HTTPRoute, as the cluster
	// routes), whose backend follows ws.Activator (one request, where Apply makes six).
	Route(ctx context.Context, ws Workspace) error
	// Scale sets the Deployment's replicas through the scale subresource.
	Scale(ctx context.Context, id string, replicas int32) error
	// Observe reports what the cluster holds for the session.
	Observe(ctx context.Context, id string) (*Observed, error)
	// Readiness tells a waiting session's readiness more cheaply than Observe: the ready step
	// asks on every touch of a creating or waking session, so it runs often. The answer fills
	// Kinds (the Deployment alone), the replica counts, Pods, Ready and PodProblem.
	Readiness(ctx context.Context, id string) (*Observed, error)
	// ObserveAll reports every session that has labelled objects in the cluster.
	ObserveAll(ctx context.Context) ([]*Observed, error)
	// Password reads the IDE password from the session's Secret.
	Password(ctx context.Context, id string) (string, error)
	// StartBackup starts (or finds) the backup Job of the given attempt and returns its state.
	StartBackup(ctx context.Context, id string, attempt int) (*Backup, error)
	// BackupStatus reports the backup Job of the given attempt.
	BackupStatus(ctx context.Context, id string, attempt int) (*Backup, error)
	// StartRestore starts (or finds) the restore Job of the given attempt, which fills the
	// session's (new, empty) volume from the archive at location; a KindNotFound error when
	// the session has no data claim yet.
	StartRestore(ctx context.Context, id string, attempt int, location string) (*Backup, error)
	// RestoreStatus reports the restore Job of the given attempt.
	RestoreStatus(ctx context.Context, id string, attempt int) (*Backup, error)
	// CheckArchive reads the archive at location through and reports what it holds or what is
	// wrong with it (Archive.Problem); an error only when it could not be read at all.
	CheckArchive(ctx context.Context, location string) (*Archive, error)
	// RemoveArchives starts (or finds) the Job named name that removes the archives at
	// locations, and returns its state; running it again is harmless.
	RemoveArchives(ctx context.Context, name string, locations []string) (*Backup, error)
	// DeleteWorkspace deletes the session's objects; the PVC only when deletePVC is true.
	// It returns once the deletions are accepted; Observe tells when they are gone.
	DeleteWorkspace(ctx context.Context, id string, deletePVC bool) error
}

// PodWatcher is what a Cluster may offer Service.Await besides: WatchPods tells the caller when
// session id's pods change in a way a waiter needs (changed receives, a buffer of one), from
// when it returns until stop is called, so a waiting read follows the pod instead of a timer;
// WatchedReady reports that, while someone waits on ws's session, the watch saw a pod of ws's
// current template turn Ready, so the read that follows need not ask the cluster again; and
// WatchedStarting that the watch knows session id's pods to be starting still (none Ready, none
// in trouble: what a read would find), so a waiter's first read can wait for the watch.
// internal/kube shares one watch among all waiters; a Cluster without it is read at
// Options.AwaitInterval.
type PodWatcher interface {
	WatchPods(ctx context.Context, id string) (changed <-chan struct{}, stop func(), err error)
	WatchedReady(ws Workspace) bool
	WatchedStarting(id string) bool
}

// Store keeps session records, indexes, activity, locks and idempotency keys (internal/store
// implements it on Redis).
type Store interface {
	// Reserve stores s only when no record has its id, and only while lock (s's) is held; it
	// reports whether it did.
	Reserve(ctx context.Context, lock Lock, s *Session) (bool, error)
	// Get returns the record, with LastActivity the newest of the record's and the activity
	// index's; a *Error of KindNotFound when there is none.
	Get(ctx context.Context, id string) (*Session, error)
	// Put overwrites the record and keeps the indexes (user, created, state, idle deadline,
	// expiry) in step with it. Deleted sessions are kept as tombstones for a while. It writes
	// only while lock (s's) is held, checked atomically with the write: a *Error of KindBusy
	// when it is not, and nothing is written.
	Put(ctx context.Context, lock Lock, s *Session) error
	// Remove deletes the record and every index entry.
	Remove(ctx context.Context, id string) error
	// List pages records, oldest first, filtered by user and state.
	List(ctx context.Context, opts ListOptions) (*ListResult, error)
	// Touch records activity at t (never moving it backwards) and the idle deadline
	// t+idleTimeout for sessions that are awake.
	Touch(ctx context.Context, id string, t time.Time) error
	// Lock takes the per-session lock for ttl, waiting up to wait; a *Error of KindBusy when
	// it cannot.
	Lock(ctx context.Context, id string, ttl, wait time.Duration) (Lock, error)
	// ClaimRequest maps an idempotency key to a session id: it returns id when the key was
	// free (and is now claimed) and the id already claimed otherwise.
	ClaimRequest(ctx context.Context, key, id string, ttl time.Duration) (string, error)
	// Ping checks the connection.
	Ping(ctx context.Context) error

	// PutBackup writes an archive's catalog record and its indexes (user, session, age).
	PutBackup(ctx context.Context, b *BackupRecord) error
	// GetBackup returns an archive's record; a *Error of KindNotFound when there is none.
	GetBackup(ctx context.Context, id string) (*BackupRecord, error)
	// ListBackups pages the catalog newest first, filtered by user or session.
	ListBackups(ctx context.Context, opts BackupListOptions) (*BackupList, error)
	// RemoveBackup deletes an archive's record and its index entries.
	RemoveBackup(ctx context.Context, id string) error
	// ExpiredBackups returns up to limit available archives whose ExpiresAt is at or before
	// now, oldest first; RemovingBackups up to limit archives being removed.
	ExpiredBackups(ctx context.Context, now time.Time, limit int) ([]*BackupRecord, error)
	RemovingBackups(ctx context.Context, limit int) ([]*BackupRecord, error)
}

// Counter is what a Store also implements for the count limits (Limits): internal/store and
// sessiontest's Store do. It is a port of its own so that a Store without it (a wrapper in a
// test) still serves a Service whose count limits are off.
type Counter interface {
	// Usage counts what the count limits are checked against, in one round trip: user's
	// sessions (deleted ones left out), the awake ones among them, and every awake session.
	Usage(ctx context.Context, user string) (Usage, error)
}

// Lock is a held per-session lock (Store.Lock): a token in the store with an expiry. Only its
// holder can extend or release it, and writes made with it (Store.Put, Store.Reserve) land
// only while it is held.
type Lock interface {
	// Extend moves the lock's expiry to ttl from now; false when it is no longer held.
	Extend(ctx context.Context, ttl time.Duration) (bool, error)
	// Release frees the lock if it is still held; calling it again does nothing.
	Release(ctx context.Context) error
}

// Event is one durable record of a transition (internal/events writes them to Firestore).
type Event struct {
	SessionID string    `json:"session_id"`
	UserID    string    `json:"user_id"`
	Type      string    `json:"type"` // created, ready, slept, wake_started, woke, delete_started, backup_started, backup_done, backup_failed, backup_skipped, deleted, failed, updated, restored, restore_failed, restore_retried
	From      State     `json:"from,omitempty"`
	To        State     `json:"to"`
	Actor     string    `json:"actor"` // api, sweep, terraform, reconcile, activator
	At        time.Time `json:"at"`
	Detail    string    `json:"detail,omitempty"`
	Session   *Session  `json:"session,omitempty"`
}

// Recorder writes durable events. A nil Recorder records nothing.
type Recorder interface {
	Record(ctx context.Context, ev Event) error
}

type actorKey struct{}

// WithActor names who drives the transitions made with ctx ("api", "sweep", "terraform", ...).
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorOf returns the actor recorded in ctx, "api" by default.
func ActorOf(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "api"
}
