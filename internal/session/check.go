package session

import (
	"encoding/base64"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Bounds on what a workspace may ask for.
const (
	MaxImageLength = 512
	MaxLabels      = 32
)

// reservedLabelPrefixes are Hyperbola's and Kubernetes' own: a user label may not use them,
// so it can never hide which session an object belongs to.
var reservedLabelPrefixes = []string{"hyperbola.dev/", "app.kubernetes.io/", "kubernetes.io/", "k8s.io/"}

// CheckImage validates a container image reference (shape only; the registry decides the rest).
func CheckImage(field, image string) error {
	switch {
	case image == "":
		return Invalid(field, "%s must not be empty", field)
	case len(image) > MaxImageLength:
		return Invalid(field, "%s is longer than %d characters", field, MaxImageLength)
	case strings.ContainsAny(image, " \t\r\n\"'\\"):
		return Invalid(field, "%s %q is not an image reference", field, image)
	}
	return nil
}

// ParseQuantity parses a positive Kubernetes quantity ("5Gi", "250m") for field, refusing one
// whose derived values do not fit (represents: field "cpu", "memory" and "storage" each have
// their rule).
func ParseQuantity(field, s string) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(strings.TrimSpace(s))
	if err != nil {
		return q, Invalid(field, "%s %q is not a quantity such as \"5Gi\" or \"250m\"", field, s)
	}
	if q.Sign() <= 0 {
		return q, Invalid(field, "%s must be greater than zero", field)
	}
	if !represents(field, q) {
		// Kubernetes counts cpu in millicores and memory (with its limit) and storage in
		// bytes, each an int64: beyond that a value wraps (3Ei of memory made a negative limit).
		return q, Invalid(field, "%s %q is too large to be a workspace's %s", field, s, field)
	}
	return q, nil
}

// CheckLabels validates user labels: Kubernetes label syntax, at most MaxLabels, and none
// under a reserved prefix.
func CheckLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return Invalid("labels", "at most %d labels", MaxLabels)
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, p := range reservedLabelPrefixes {
			if strings.HasPrefix(k, p) || strings.Contains(k, "."+p) {
				return Invalid("labels", "label %q uses the reserved prefix %q", k, p)
			}
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return Invalid("labels", "label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(labels[k]); len(errs) > 0 {
			return Invalid("labels", "label %q value %q: %s", k, labels[k], strings.Join(errs, "; "))
		}
	}
	return nil
}

// CheckState validates a requested state: "" and "running" start the workspace, "sleeping"
// keeps it asleep.
func CheckState(field string, s State) error {
	switch s {
	case "", StateRunning, StateSleeping:
		return nil
	}
	return Invalid(field, "%s must be %q or %q, not %q", field, StateRunning, StateSleeping, string(s))
}

// CheckIdleTimeout bounds a per-session idle timeout: 0 (never sleep) or at least a minute
// (the idle sweep runs every minute).
func CheckIdleTimeout(d Duration) error {
	if d.D() < 0 {
		return Invalid("idle_timeout", "idle_timeout must not be negative")
	}
	if d.D() > 0 && d.D().Seconds() < 60 {
		return Invalid("idle_timeout", "idle_timeout must be at least 1m (the idle sweep runs every minute), or 0 to never sleep")
	}
	return nil
}

// CheckIdleConnectedMax bounds a per-session cap on an open tab's time without use: 0 (no cap)
// or at least a minute. CheckIdlePair compares it with the idle timeout.
func CheckIdleConnectedMax(d Duration) error {
	if d.D() < 0 {
		return Invalid("idle_connected_max", "idle_connected_max must not be negative")
	}
	if d.D() > 0 && d.D().Seconds() < 60 {
		return Invalid("idle_connected_max", "idle_connected_max must be at least 1m (the idle sweep runs every minute), or 0 for no cap")
	}
	return nil
}

// CheckIdlePair checks a session's cap against its idle timeout: the cap counts from the same
// last use, so one shorter than the idle timeout would sleep workspaces in use.
func CheckIdlePair(idle, connectedMax Duration) error {
	if connectedMax > 0 && idle > 0 && connectedMax < idle {
		return Invalid("idle_connected_max", "idle_connected_max (%s) must be 0 (no cap) or at least idle_timeout (%s)", connectedMax, idle)
	}
	return nil
}

// MinTTL is the shortest lifetime a session may ask for.
const MinTTL = time.Hour

// CheckTTL bounds a per-session lifetime: 0 (never expires) or at least MinTTL.
func CheckTTL(d Duration) error {
	if d.D() < 0 {
		return Invalid("ttl", "ttl must not be negative")
	}
	if d.D() > 0 && d.D() < MinTTL {
		return Invalid("ttl", "ttl must be at least 1h, or 0 to never expire")
	}
	return nil
}

// ExpiresAt is when a session created at created with lifetime ttl expires: the zero time
// (never) when ttl is 0.
func ExpiresAt(created time.Time, ttl Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return created.Add(ttl.D())
}

// Bounds on a listing and an idempotency key.
const (
	MaxListLimit = 1000 // the largest page a listing serves
	MaxCursor    = 512  // the store's cursors are far shorter
	MaxRequestID = 128
)

// Check validates a create as Service.Create runs it, first thing: a well-formed user id,
// state and request id, a ttl in bounds, and each workspace member that is given (a blank one
// takes the service's default).
func (r CreateRequest) Check() error {
	if err := CheckUserID(r.UserID); err != nil {
		return err
	}
	if err := CheckState("state", r.State); err != nil {
		return err
	}
	if err := CheckRequestID("request_id", r.RequestID); err != nil {
		return err
	}
	if err := checkTTL(r.TTL); err != nil {
		return err
	}
	if err := checkConnectedMax(r.IdleTimeout, r.IdleConnectedMax); err != nil {
		return err
	}
	return checkSpec(given(r.Image), given(r.Storage), given(r.CPU), given(r.Memory), r.IdleTimeout, r.Labels)
}

// Check validates an update as Service.Update runs it, first thing: every member that is given
// (not nil), trimmed as Update applies it. Shrinking the volume needs the session: Update
// refuses it under the session's lock.
func (r UpdateRequest) Check() error {
	if err := checkTTL(r.TTL); err != nil {
		return err
	}
	if err := checkConnectedMax(r.IdleTimeout, r.IdleConnectedMax); err != nil {
		return err
	}
	return checkSpec(trimmed(r.Image), trimmed(r.Storage), trimmed(r.CPU), trimmed(r.Memory), r.IdleTimeout, r.Labels)
}

// checkConnectedMax checks a cap that is given, and against an idle timeout given with it (the
// Service checks the pair again with the session's values).
func checkConnectedMax(idle, connectedMax *Duration) error {
	if connectedMax == nil {
		return nil
	}
	if err := CheckIdleConnectedMax(*connectedMax); err != nil {
		return err
	}
	if idle != nil {
		if err := CheckIdleTimeout(*idle); err != nil {
			return err
		}
		return CheckIdlePair(*idle, *connectedMax)
	}
	return nil
}

// checkTTL checks a ttl that is given.
func checkTTL(ttl *Duration) error {
	if ttl == nil {
		return nil
	}
	return CheckTTL(*ttl)
}

// given is a create's member as checkSpec takes it: blank is not given (the default).
func given(s string) *string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return trimmed(&s)
}

// trimmed is a member as the Service applies it (nil stays nil).
func trimmed(s *string) *string {
	if s == nil {
		return nil
	}
	v := strings.TrimSpace(*s)
	return &v
}

// checkSpec checks the workspace's members that are given (not nil).
func checkSpec(image, storage, cpu, memory *string, idle *Duration, labels map[string]string) error {
	if image != nil {
		if err := CheckImage("image", *image); err != nil {
			return err
		}
	}
	for _, q := range []struct {
		field string
		v     *string
	}{{"storage", storage}, {"cpu", cpu}, {"memory", memory}} {
		if q.v != nil {
			if _, err := ParseQuantity(q.field, *q.v); err != nil {
				return err
			}
		}
	}
	if idle != nil {
		if err := CheckIdleTimeout(*idle); err != nil {
			return err
		}
	}
	return CheckLabels(labels)
}

// Check validates a listing as Service.List runs it, first thing: a well-formed user id, a
// known state, a limit of 0 (the store's default) or CheckLimit's, and a cursor shaped as the
// store returns them (unpadded base64url; what it holds is the store's to judge).
func (o ListOptions) Check() error {
	if o.UserID != "" {
		if err := CheckUserID(o.UserID); err != nil {
			return err
		}
	}
	if o.State != "" && !o.State.Valid() {
		names := make([]string, len(States))
		for i, s := range States {
			names[i] = string(s)
		}
		return Invalid("status", "status must be one of %s, not %q", strings.Join(names, ", "), string(o.State))
	}
	if o.Limit != 0 {
		if err := CheckLimit(o.Limit); err != nil {
			return err
		}
	}
	if o.Cursor != "" {
		if _, err := base64.RawURLEncoding.DecodeString(o.Cursor); err != nil || len(o.Cursor) > MaxCursor {
			return Invalid("cursor", "cursor is not one this API returned")
		}
	}
	return nil
}

// CheckLimit validates a page size that is asked for: 1 to MaxListLimit (ListOptions' 0 is
// none asked for: the store's default).
func CheckLimit(n int) error {
	if n < 1 || n > MaxListLimit {
		return Invalid("limit", "limit must be a whole number from 1 to %d", MaxListLimit)
	}
	return nil
}

// CheckRequestID validates an idempotency key: 1 to MaxRequestID printable ASCII characters
// without spaces ("" means none).
func CheckRequestID(field, id string) error {
	if id == "" {
		return nil
	}
	ok := len(id) <= MaxRequestID
	for i := 0; ok && i < len(id); i++ {
		ok = id[i] >= 0x21 && id[i] <= 0x7e
	}
	if !ok {
		return Invalid(field, "%s must be 1 to %d printable ASCII characters without spaces", field, MaxRequestID)
	}
	return nil
}
