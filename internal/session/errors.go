package session

import (
	"errors"
	"fmt"
)

// Kind classifies a domain error. The HTTP API maps kinds to status codes (internal/api), the
// Go client maps them back (internal/client), and the provider maps them to diagnostics.
type Kind string

// The error kinds.
const (
	KindInvalid     Kind = "invalid_argument" // bad input; Field names it
	KindNotFound    Kind = "not_found"        // no such session
	KindConflict    Kind = "conflict"         // the transition is not allowed in this state
	KindBusy        Kind = "busy"             // another transition holds the session's lock
	KindUnavailable Kind = "unavailable"      // a dependency (Redis, cluster, Firestore) failed
	KindBackup      Kind = "backup_failed"    // the backup Job failed: the PVC was kept
	KindRateLimited Kind = "rate_limited"     // too many requests
	KindInternal    Kind = "internal"         // a bug
	// KindUnimplemented: this deployment was built without the part the call needs (the
	// usage report without Firestore, say); retrying cannot help.
	KindUnimplemented Kind = "unimplemented"
	// KindQuota: a count limit of the deployment (Limits) is reached; Limit names it. Waiting
	// helps only once a session is deleted or sleeps.
	KindQuota Kind = "quota_exceeded"
)

// Error is a domain error with a kind, the field at fault (for KindInvalid), the deployment
// limit it ran into (KindQuota, or a KindInvalid above a maximum) and a cause.
type Error struct {
	Kind    Kind
	Field   string
	Limit   string
	Message string
	Err     error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" && msg == "" {
		msg = "invalid " + e.Field
	}
	if e.Err != nil {
		if msg == "" {
			return e.Err.Error()
		}
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) and friends match on kind.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) && t.Field == "" && t.Limit == "" && t.Message == "" && t.Err == nil {
		return t.Kind == e.Kind
	}
	return false
}

// Sentinels for errors.Is: they match any *Error of the same kind.
var (
	ErrInvalid     = &Error{Kind: KindInvalid}
	ErrNotFound    = &Error{Kind: KindNotFound}
	ErrConflict    = &Error{Kind: KindConflict}
	ErrBusy        = &Error{Kind: KindBusy}
	ErrUnavailable = &Error{Kind: KindUnavailable}
	ErrBackup      = &Error{Kind: KindBackup}
	// ErrUnimplemented matches any KindUnimplemented error.
	ErrUnimplemented = &Error{Kind: KindUnimplemented}
	// ErrQuota matches any KindQuota error.
	ErrQuota = &Error{Kind: KindQuota}
)

// Invalid reports bad input in field.
func Invalid(field, format string, args ...any) error {
	return &Error{Kind: KindInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound reports an unknown session.
func NotFound(id string) error {
	return &Error{Kind: KindNotFound, Message: fmt.Sprintf("session %q not found", id)}
}

// BackupNotFound reports an unknown archive.
func BackupNotFound(id string) error {
	return &Error{Kind: KindNotFound, Message: fmt.Sprintf("backup %q not found", id)}
}

// Conflict reports a transition that the session's state does not allow.
func Conflict(format string, args ...any) error {
	return &Error{Kind: KindConflict, Message: fmt.Sprintf(format, args...)}
}

// LockLost is the error of a write whose lock is no longer held: nothing was written.
func LockLost(id string) error {
	return &Error{Kind: KindBusy, Message: fmt.Sprintf("session %q: the writer no longer holds its lock "+
		"(it expired, and another change may hold it); nothing was written", id)}
}

// Unavailable wraps a dependency's failure.
func Unavailable(what string, err error) error {
	return &Error{Kind: KindUnavailable, Message: what + " unavailable", Err: err}
}

// Unimplemented reports a call this deployment was built without the part for.
func Unimplemented(format string, args ...any) error {
	return &Error{Kind: KindUnimplemented, Message: fmt.Sprintf(format, args...)}
}

// Quota reports a count limit that is reached; limit names it (Limits' names, LimitRunning...).
func Quota(limit, format string, args ...any) error {
	return &Error{Kind: KindQuota, Limit: limit, Message: fmt.Sprintf(format, args...)}
}

// LimitOf returns the deployment limit an error names, or "".
func LimitOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Limit
	}
	return ""
}

// KindOf returns the kind of err: the kind of the first *Error in its chain, KindInternal for
// any other non-nil error, "" for nil.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// FieldOf returns the field named by an invalid-argument error, or "".
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
