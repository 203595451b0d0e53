package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Limits bound what a caller may ask for. Zero values are no bound: the deployment's defaults
// (internal/config) turn the maximums on.
type Limits struct {
	// MaxCPU, MaxMemory and MaxStorage bound one workspace's requests (quantities; "" = none).
	MaxCPU, MaxMemory, MaxStorage string
	// ImageAllowlist is the images a workspace may run: an entry that ends in "/" allows
	// every image under that registry path, any other entry allows exactly that reference (a
	// digest such as "repo/img@sha256:..." or a tag); "*" allows any image; nil allows any
	// (internal/config fills DefaultImageAllowlist). References are compared as written
	// ("docker.io/x/y" is not "x/y").
	ImageAllowlist []string
	// MaxSessionsPerUser bounds a user's sessions (deleted ones left out), MaxRunningPerUser
	// a user's awake ones (creating, running, waking), MaxRunning every awake session.
	// 0 is no bound.
	MaxSessionsPerUser, MaxRunningPerUser, MaxRunning int
}

// The names of the limits, as errors name them (Error.Limit) and the API's "limit" member.
const (
	LimitMaxCPU          = "max_cpu"
	LimitMaxMemory       = "max_memory"
	LimitMaxStorage      = "max_storage"
	LimitImageAllowlist  = "image_allowlist"
	LimitSessionsPerUser = "max_sessions_per_user"
	LimitRunningPerUser  = "max_running_per_user"
	LimitRunning         = "max_running"
)

// MemoryLimitFactor sets a workspace's memory limit to this multiple of its request
// (MemoryLimit): internal/kube builds the limit with it, and a request whose limit would not
// fit is refused when it is checked.
const MemoryLimitFactor = 4

// MemoryLimit is the memory limit of a workspace that requests memory; false when it does not
// fit in a whole number of bytes (an int64), as Kubernetes counts it.
func MemoryLimit(memory resource.Quantity) (resource.Quantity, bool) {
	if memory.Cmp(*resource.NewQuantity(math.MaxInt64/MemoryLimitFactor, resource.BinarySI)) > 0 {
		return resource.Quantity{}, false
	}
	return *resource.NewQuantity(memory.Value()*MemoryLimitFactor, resource.BinarySI), true
}

// represents reports whether quantity q of field fits what is derived from it: cpu in
// millicores, memory's limit (MemoryLimit) and storage in bytes, each an int64.
func represents(field string, q resource.Quantity) bool {
	switch field {
	case "cpu":
		return q.Cmp(*resource.NewMilliQuantity(math.MaxInt64, resource.DecimalSI)) <= 0
	case "memory":
		_, ok := MemoryLimit(q)
		return ok
	}
	// ParseQuantity saturates at MaxInt64 ("9Ei" reads as 2^63-1): that value itself is out
	return q.Cmp(*resource.NewQuantity(math.MaxInt64, resource.BinarySI)) < 0
}

// Check validates the limits themselves (internal/config calls it at start).
func (l Limits) Check() error {
	for _, m := range []struct{ name, v string }{{LimitMaxCPU, l.MaxCPU}, {LimitMaxMemory, l.MaxMemory}, {LimitMaxStorage, l.MaxStorage}} {
		if m.v == "" {
			continue
		}
		if _, err := ParseQuantity(strings.TrimPrefix(m.name, "max_"), m.v); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	if l.MaxSessionsPerUser < 0 || l.MaxRunningPerUser < 0 || l.MaxRunning < 0 {
		return fmt.Errorf("session counts must not be negative (0 is no limit)")
	}
	for _, e := range l.ImageAllowlist {
		if e == "" || strings.ContainsAny(e, " \t\r\n\"'\\") {
			return fmt.Errorf("image allowlist entry %q is not an image reference or registry path", e)
		}
	}
	return nil
}

// overMax refuses field's value v when it is above max ("" = none): a KindInvalid error that
// names the field and the limit.
func overMax(field, limit, v, max string) error {
	if max == "" {
		return nil
	}
	q, err := ParseQuantity(field, v)
	if err != nil {
		return err
	}
	m, err := resource.ParseQuantity(max)
	if err != nil {
		return &Error{Kind: KindInternal, Message: fmt.Sprintf("%s %q is not a quantity", limit, max)}
	}
	if q.Cmp(m) > 0 {
		return &Error{Kind: KindInvalid, Field: field, Limit: limit,
			Message: fmt.Sprintf("%s %s is above this deployment's maximum of %s (%s)", field, v, max, limit)}
	}
	return nil
}

// DefaultImageAllowlist is the allowlist of a deployment that configures none: its default
// image, and every image under the default image's registry path
// ("us-docker.pkg.dev/p/r/code-server:1" allows "us-docker.pkg.dev/p/r/"). An official Docker
// Hub image ("alpine:3", no "/") allows itself alone: its path would be all of Docker Hub.
func DefaultImageAllowlist(image string) []string {
	if p := registryPath(image); p != "" {
		return []string{image, p}
	}
	return []string{image}
}

// imageAllowed reports whether image is on the allowlist (see Limits.ImageAllowlist).
func (l Limits) imageAllowed(image string) bool {
	if l.ImageAllowlist == nil {
		return true
	}
	for _, e := range l.ImageAllowlist {
		switch {
		case e == "":
		case e == "*", e == image:
			return true
		case strings.HasSuffix(e, "/") && strings.HasPrefix(image, e):
			return true
		}
	}
	return false
}

// registryPath is the path an image lives under ("us-docker.pkg.dev/p/r/code-server:1" →
// "us-docker.pkg.dev/p/r/"); "" when it has none.
func registryPath(image string) string {
	repo := image
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	slash := strings.LastIndex(repo, "/")
	if slash < 0 {
		return ""
	}
	return repo[:slash+1]
}

// CheckDefaults checks a deployment's defaults (what a request leaves out) against l.
func (l Limits) CheckDefaults(def Workspace) error {
	s := &Service{opts: Options{Limits: l}}
	return s.checkMaximums(nil, &Session{Image: def.Image, CPU: def.CPU, Memory: def.Memory, Storage: def.Storage})
}

// checkMaximums refuses a workspace above the maximums or with an image off the allowlist.
// Only the members that changed (old nil: a new session, every member) are checked, so a
// session made before a limit was lowered can still change its other members.
func (s *Service) checkMaximums(old, sess *Session) error {
	l := s.opts.Limits
	if (old == nil || sess.Image != old.Image) && !l.imageAllowed(sess.Image) {
		return &Error{Kind: KindInvalid, Field: "image", Limit: LimitImageAllowlist,
			Message: fmt.Sprintf("image %q is not on this deployment's image allowlist (%s)", sess.Image, LimitImageAllowlist)}
	}
	for _, m := range []struct{ field, limit, v, was, max string }{
		{"cpu", LimitMaxCPU, sess.CPU, "", l.MaxCPU},
		{"memory", LimitMaxMemory, sess.Memory, "", l.MaxMemory},
		{"storage", LimitMaxStorage, sess.Storage, "", l.MaxStorage},
	} {
		if old != nil {
			m.was = map[string]string{"cpu": old.CPU, "memory": old.Memory, "storage": old.Storage}[m.field]
			if m.v == m.was {
				continue
			}
		}
		if err := overMax(m.field, m.limit, m.v, m.max); err != nil {
			return err
		}
	}
	return nil
}

// Usage is what the count limits are checked against: the user's sessions (deleted ones left
// out), how many of them are awake (creating, running, waking), and every awake session.
type Usage struct {
	UserSessions int
	UserAwake    int
	Awake        int
}

// countsLimited reports whether any count limit is on.
func (l Limits) countsLimited() bool {
	return l.MaxSessionsPerUser > 0 || l.MaxRunningPerUser > 0 || l.MaxRunning > 0
}

// quotaLockID is the lock the count checks of user's creates and wakes run under, through the
// commit of the new state: the user's own (a hash, so any user id makes a short key), or one
// for every user when a global count is limited. No session id has a "/", so it never is one.
func (l Limits) quotaLockID(user string) string {
	if l.MaxRunning > 0 {
		return "quota/all"
	}
	sum := sha256.Sum256([]byte(user))
	return "quota/" + hex.EncodeToString(sum[:12])
}

// withQuota runs commit (which writes the session's new state) when user may have one more
// session (newSession) and one more awake one (wake, or a create that starts it), under the
// quota lock; a KindQuota error naming the limit when not. Without count limits it runs commit.
func (s *Service) withQuota(ctx context.Context, user string, newSession, awake bool, commit func() error) error {
	l := s.opts.Limits
	if !l.countsLimited() {
		return commit()
	}
	counter, ok := s.store.(Counter)
	if !ok {
		return &Error{Kind: KindInternal, Message: "count limits are configured but the store cannot count sessions"}
	}
	lk, err := s.store.Lock(ctx, l.quotaLockID(user), s.opts.LockTTL, s.opts.LockWait)
	if err != nil {
		return err
	}
	defer func() {
		if err := lk.Release(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("releasing the quota lock", "user_id", user, "err", err)
		}
	}()
	u, err := counter.Usage(ctx, user)
	if err != nil {
		return err
	}
	switch {
	case newSession && l.MaxSessionsPerUser > 0 && u.UserSessions >= l.MaxSessionsPerUser:
		return Quota(LimitSessionsPerUser, "user %q has %d sessions, this deployment's maximum (%s): delete one first",
			user, u.UserSessions, LimitSessionsPerUser)
	case awake && l.MaxRunningPerUser > 0 && u.UserAwake >= l.MaxRunningPerUser:
		return Quota(LimitRunningPerUser, "user %q has %d running sessions, this deployment's maximum (%s): sleep one first",
			user, u.UserAwake, LimitRunningPerUser)
	case awake && l.MaxRunning > 0 && u.Awake >= l.MaxRunning:
		return Quota(LimitRunning, "this deployment runs %d sessions, its maximum (%s): try again when one sleeps",
			u.Awake, LimitRunning)
	}
	return commit()
}

// CheckMaximums reports what the maximums and the image allowlist would refuse of a create
// (old nil) or of an update of old, with the members given ("" takes the default on a create
// and leaves the member as it is on an update). The provider's direct mode asks it at plan.
func (s *Service) CheckMaximums(old *Session, image, cpu, memory, storage string) error {
	want := &Session{Image: s.opts.Image, CPU: s.opts.CPU, Memory: s.opts.Memory, Storage: s.opts.Storage}
	if old != nil {
		want = old.Clone()
	}
	for _, m := range []struct{ in, out *string }{{&image, &want.Image}, {&cpu, &want.CPU}, {&memory, &want.Memory}, {&storage, &want.Storage}} {
		if v := strings.TrimSpace(*m.in); v != "" {
			*m.out = v
		}
	}
	return s.checkMaximums(old, want)
}
