// Package session owns a workspace session's state machine and every lifecycle decision.
// It talks to the cluster, Redis and Firestore only through the small interfaces it defines
// (Cluster, Store, Recorder); internal/kube, internal/store and internal/events implement them.
package session

import (
	"context"
	"time"
)

// State is where a session is in its lifecycle.
//
//	creating → running ⇄ sleeping (wake goes through waking) → deleting → deleted
//	any state → failed (with a reason); a failed session can be woken, slept or deleted again.
type State string

// The states a session can be in.
const (
	StateCreating State = "creating"
	StateRunning  State = "running"
	StateSleeping State = "sleeping"
	StateWaking   State = "waking"
	StateDeleting State = "deleting"
	StateDeleted  State = "deleted"
	StateFailed   State = "failed"
)

// States lists every state, in lifecycle order.
var States = []State{StateCreating, StateRunning, StateSleeping, StateWaking, StateDeleting, StateDeleted, StateFailed}

// Awake reports whether a session in state s is up or on its way up: it has (or will have) a
// running workspace, and so an idle deadline.
func (s State) Awake() bool {
	return s == StateCreating || s == StateRunning || s == StateWaking
}

// The defaults of a deployment's settings: internal/config reads these when the environment sets
// nothing, and the Service fills a request's empty fields from its Options.
const (
	DefaultDomain      = "preview.hyperbola.in" // workspace URLs are https://vs-code-<id>.<domain>
	DefaultImage       = "codercom/code-server:4.96.4"
	DefaultStorage     = "5Gi"
	DefaultCPU         = "250m"
	DefaultMemory      = "256Mi"
	DefaultIdleTimeout = 15 * time.Minute
	DefaultSessionTTL  = 24 * time.Hour
	// DefaultIdleConnectedMax is how long an open tab alone keeps a workspace awake after its
	// last real use (internal/config's default; Options.IdleConnectedMax 0 is no cap).
	DefaultIdleConnectedMax = 2 * time.Hour
)

// WorkspaceURL is the address of session id's IDE under domain.
func WorkspaceURL(id, domain string) string { return "https://vs-code-" + id + "." + domain }

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, k := range States {
		if s == k {
			return true
		}
	}
	return false
}

// Pending is a step that must wait for the cluster. It is recorded on the session and driven
// forward by whoever touches the session next (a request, the sweep, a polling provider): no
// goroutine outlives the request that started the step.
type Pending string

// The pending steps.
const (
	PendingNone    Pending = ""
	PendingApply   Pending = "await-apply"   // create: not every object is known to be applied yet
	PendingReady   Pending = "await-ready"   // objects applied (create or wake): waiting for the pod
	PendingBackup  Pending = "await-backup"  // delete: waiting for the backup Job
	PendingRemoval Pending = "await-removal" // delete: objects deleted, waiting for them to go
	PendingRestore Pending = "await-restore" // create with restore_from: the restore Job fills the volume
)

// MaxAwait bounds one Await (the status route's wait): long enough that a client waiting for
// a start asks only a few times, well inside the request timeouts of the API's hosts and of
// the proxies in front of it.
const MaxAwait = 20 * time.Second

// Starting reports whether the session is on its way to a ready pod: a create, a wake or an
// update's rollout whose objects are applied or being applied (await-apply, await-ready).
// These steps end within seconds of the pod, unlike a restore's or a delete's Jobs.
func (s *Session) Starting() bool {
	return s.Pending == PendingApply || s.Pending == PendingReady
}

// Session is one workspace: its record as kept in Redis, and the API's view of it.
type Session struct {
	ID           string   `json:"uuid"`
	UserID       string   `json:"user_id"`
	State        State    `json:"status"`
	Reason       string   `json:"reason,omitempty"`
	WorkspaceURL string   `json:"workspace_url"`
	Image        string   `json:"image"`
	Storage      string   `json:"storage"`
	CPU          string   `json:"cpu"`
	Memory       string   `json:"memory"`
	IdleTimeout  Duration `json:"idle_timeout"`
	// IdleConnectedMax caps the time a workspace stays awake on an open tab's heartbeat alone,
	// counted from its last real use (LastActivity): past it, the sweep puts the workspace to
	// sleep even though a browser is still connected. 0 leaves no cap (the heartbeat keeps it
	// awake as long as a tab is open). Records written before the cap existed read as 0.
	IdleConnectedMax Duration          `json:"idle_connected_max,omitzero"`
	BackupOnDelete   bool              `json:"backup_on_delete"`
	Labels           map[string]string `json:"labels,omitempty"`
	CreatedAt        time.Time         `json:"created_at"`
	UpdatedAt        time.Time         `json:"updated_at"`
	LastActivity     time.Time         `json:"last_activity"`
	// ExpiresAt is when the sweep deletes the session (with a backup): CreatedAt + its ttl.
	// Zero (absent from the JSON) means it never expires.
	ExpiresAt      time.Time `json:"expires_at,omitzero"`
	BackupLocation string    `json:"backup_location,omitempty"`
	// RestoreFrom is the archive the session's volume was filled from (a location), and
	// RestoredAt when that finished. Until then the workspace does not start.
	RestoreFrom string    `json:"restore_from,omitempty"`
	RestoredAt  time.Time `json:"restored_at,omitzero"`
	Pending     Pending   `json:"pending,omitempty"`
	// PendingSince is when the session entered its pending step (zero when it has none): a
	// step that lasts far longer than it should is an alert (the sweep's report, /metrics).
	PendingSince time.Time `json:"pending_since,omitzero"`
	// Attempt counts the session's Jobs (restores and backups), so a retry runs a fresh Job.
	Attempt int `json:"attempt,omitempty"`
	// BackupFailures counts the backups that failed since the session last woke: a delete
	// stops trying after Options.MaxBackupAttempts (the volume is kept) until a wake.
	BackupFailures int `json:"backup_failures,omitempty"`
	// Password is the IDE password. It is returned once, by Create, and never stored in Redis
	// (the Kubernetes Secret holds it).
	Password string `json:"password,omitempty"`
}

// Await sets the session's pending step, and PendingSince to now when the step changes (zero
// when p is PendingNone). Every change of step goes through it.
func (s *Session) Await(p Pending, now time.Time) {
	switch {
	case p == PendingNone:
		s.PendingSince = time.Time{}
	case p != s.Pending || s.PendingSince.IsZero():
		s.PendingSince = now
	}
	s.Pending = p
}

// Clone returns a deep copy.
func (s *Session) Clone() *Session {
	c := *s
	if s.Labels != nil {
		c.Labels = make(map[string]string, len(s.Labels))
		for k, v := range s.Labels {
			c.Labels[k] = v
		}
	}
	return &c
}

// CreateRequest asks for a new workspace. Zero values take the service's defaults.
type CreateRequest struct {
	UserID         string            `json:"user_id"`
	Image          string            `json:"image,omitempty"`
	Storage        string            `json:"storage,omitempty"`
	CPU            string            `json:"cpu,omitempty"`
	Memory         string            `json:"memory,omitempty"`
	IdleTimeout    *Duration         `json:"idle_timeout,omitempty"`
	BackupOnDelete *bool             `json:"backup_on_delete,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	// TTL is the session's lifetime: it expires (and the sweep deletes it) TTL after its
	// creation. 0 never expires; nil takes the service's SessionTTL.
	TTL *Duration `json:"ttl,omitempty"`
	// IdleConnectedMax caps the time an open tab without use keeps the workspace awake (see
	// Session.IdleConnectedMax): 0 is no cap; nil takes the service's IdleConnectedMax (raised
	// to the idle timeout when that is longer).
	IdleConnectedMax *Duration `json:"idle_connected_max,omitempty"`
	// State "sleeping" creates the workspace asleep; "" or "running" starts it.
	State State `json:"state,omitempty"`
	// RestoreFrom fills the new volume from an archive before the workspace starts: a backup
	// location (BackupRecord.Location), a backup id, or a session id (its latest archive).
	// The archive must be the same user's.
	RestoreFrom string `json:"restore_from,omitempty"`
	// RequestID makes a retried create idempotent: the same id within a day returns (and
	// completes) the same session instead of making a second one.
	RequestID string `json:"request_id,omitempty"`
}

// UpdateRequest changes a workspace in place; nil fields are left as they are.
type UpdateRequest struct {
	Image          *string           `json:"image,omitempty"`
	Storage        *string           `json:"storage,omitempty"`
	CPU            *string           `json:"cpu,omitempty"`
	Memory         *string           `json:"memory,omitempty"`
	IdleTimeout    *Duration         `json:"idle_timeout,omitempty"`
	BackupOnDelete *bool             `json:"backup_on_delete,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"` // replaces all user labels when non-nil
	// TTL sets the lifetime anew, counted from the session's creation (ExpiresAt = CreatedAt
	// + TTL); 0 makes it never expire.
	TTL *Duration `json:"ttl,omitempty"`
	// IdleConnectedMax sets the cap on an open tab's time without use; 0 removes it. The
	// session's cap must stay 0 or at least its idle timeout.
	IdleConnectedMax *Duration `json:"idle_connected_max,omitempty"`
}

// DeleteOptions tunes a delete.
type DeleteOptions struct {
	// SkipBackup deletes without a backup (the session's backup_on_delete=false does the same).
	SkipBackup bool `json:"skip_backup,omitempty"`
}

// ListOptions filters and pages a listing.
type ListOptions struct {
	UserID string `json:"user_id,omitempty"`
	State  State  `json:"status,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// ListResult is one page of sessions, oldest first; NextCursor is "" on the last page.
type ListResult struct {
	Sessions   []*Session `json:"sessions"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// Manager is what both front doors use: the HTTP API serves it, and the Terraform provider
// calls it either in process (Service) or over HTTP (internal/client).
type Manager interface {
	Create(ctx context.Context, req CreateRequest) (*Session, error)
	Get(ctx context.Context, id string) (*Session, error)
	// Await is Get that, while the session is starting (Starting), waits until it is not or
	// until wait (at most MaxAwait) has passed, whichever is first: a client waiting for a
	// workspace learns that it runs the moment the control plane does, not at its next poll.
	Await(ctx context.Context, id string, wait time.Duration) (*Session, error)
	List(ctx context.Context, opts ListOptions) (*ListResult, error)
	Sleep(ctx context.Context, id string) (*Session, error)
	Wake(ctx context.Context, id string) (*Session, error)
	Update(ctx context.Context, id string, req UpdateRequest) (*Session, error)
	Delete(ctx context.Context, id string, opts DeleteOptions) (*Session, error)
	// ListBackups pages the backup catalog, newest first.
	ListBackups(ctx context.Context, opts BackupListOptions) (*BackupList, error)
	// DeleteBackup removes an archive: the record says removing until its file is gone, then
	// the answer's state is removed.
	DeleteBackup(ctx context.Context, id string) (*BackupRecord, error)
}
