package session_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// limitedRig is a rig whose service has limits (its default image is
// us-docker.pkg.dev/p/r/code-server:1).
func limitedRig(t *testing.T, l session.Limits) *rig {
	t.Helper()
	r := newRig(t)
	const image = "us-docker.pkg.dev/p/r/code-server:1"
	l.ImageAllowlist = session.DefaultImageAllowlist(image)
	r.svc = r.Service(session.Options{Domain: "ws.test", Image: image, Limits: l})
	return r
}

// wantLimit fails unless err is of kind with field and limit, and nothing new was stored.
func wantLimit(t *testing.T, err error, kind session.Kind, field, limit string) {
	t.Helper()
	if session.KindOf(err) != kind || session.FieldOf(err) != field || session.LimitOf(err) != limit {
		t.Fatalf("got %v (kind %q field %q limit %q), want kind %q field %q limit %q",
			err, session.KindOf(err), session.FieldOf(err), session.LimitOf(err), kind, field, limit)
	}
}

func TestMaximumsRefuseACreateBeforeAnyWrite(t *testing.T) {
	r := limitedRig(t, session.Limits{MaxCPU: "4", MaxMemory: "16Gi", MaxStorage: "100Gi"})
	for _, c := range []struct {
		name         string
		req          session.CreateRequest
		field, limit string
	}{
		{"cpu", session.CreateRequest{CPU: "4500m"}, "cpu", session.LimitMaxCPU},
		{"memory", session.CreateRequest{Memory: "17Gi"}, "memory", session.LimitMaxMemory},
		{"storage", session.CreateRequest{Storage: "64Ti"}, "storage", session.LimitMaxStorage},
		{"image elsewhere", session.CreateRequest{Image: "evil.example/miner:1"}, "image", session.LimitImageAllowlist},
		{"image beside the path", session.CreateRequest{Image: "us-docker.pkg.dev/p/r-evil/x:1"}, "image", session.LimitImageAllowlist},
		{"overflowing memory", session.CreateRequest{Memory: "3Ei"}, "memory", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.req.UserID = "ann@example.com"
			c.req.RequestID = "req-" + c.name[:3]
			_, err := r.svc.Create(r.ctx, c.req)
			kind := session.KindInvalid
			wantLimit(t, err, kind, c.field, c.limit)
			if r.Store.Len() != 0 || len(r.Cluster.Applied()) != 0 {
				t.Fatalf("a refused create left %d records and %d applies", r.Store.Len(), len(r.Cluster.Applied()))
			}
		})
	}
	// at the maximums, and under the default image's registry path, is fine
	r.create(session.CreateRequest{CPU: "4", Memory: "16Gi", Storage: "100Gi", Image: "us-docker.pkg.dev/p/r/other@sha256:abc"})
}

// Without a maximum the overflow is still refused: the memory limit is 4 × the request.
func TestQuantitiesWhoseLimitsOverflowAreInvalid(t *testing.T) {
	for _, c := range []struct{ field, v string }{{"memory", "3Ei"}, {"memory", "2305843009213693952"}, {"cpu", "10P"}, {"storage", "9Ei"}} {
		if _, err := session.ParseQuantity(c.field, c.v); session.FieldOf(err) != c.field {
			t.Errorf("%s %s: %v", c.field, c.v, err)
		}
	}
	for _, c := range []struct{ field, v string }{{"memory", "2305843009213693951"}, {"cpu", "9P"}, {"storage", "7Ei"}} {
		if _, err := session.ParseQuantity(c.field, c.v); err != nil {
			t.Errorf("%s %s: %v", c.field, c.v, err)
		}
	}
}

func TestDefaultImageAllowlist(t *testing.T) {
	for img, want := range map[string][]string{
		"us-docker.pkg.dev/p/r/code-server:1": {"us-docker.pkg.dev/p/r/code-server:1", "us-docker.pkg.dev/p/r/"},
		"codercom/code-server@sha256:ab":      {"codercom/code-server@sha256:ab", "codercom/"},
		"localhost:5000/code-server:4":        {"localhost:5000/code-server:4", "localhost:5000/"},
		"alpine:3":                            {"alpine:3"},
	} {
		if got := session.DefaultImageAllowlist(img); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", img, got, want)
		}
	}
}

func TestMaximumsOnUpdateCheckWhatChanges(t *testing.T) {
	r := newRig(t)
	s := r.create(session.CreateRequest{Memory: "32Gi", Image: "ghcr.io/x/y:1"}) // made before the limits
	r.ready(s.ID)
	r.svc = r.Service(session.Options{Domain: "ws.test", Limits: session.Limits{MaxMemory: "16Gi", MaxStorage: "10Gi",
		ImageAllowlist: []string{"codercom/", "ghcr.io/x/y@sha256:1"}}})
	big, img, bad := "11Gi", "ghcr.io/x/y:2", "ghcr.io/x/y@sha256:1"
	_, err := r.svc.Update(r.ctx, s.ID, session.UpdateRequest{Storage: &big})
	wantLimit(t, err, session.KindInvalid, "storage", session.LimitMaxStorage)
	_, err = r.svc.Update(r.ctx, s.ID, session.UpdateRequest{Image: &img})
	wantLimit(t, err, session.KindInvalid, "image", session.LimitImageAllowlist)
	if g := r.get(s.ID); g.Storage != session.DefaultStorage || g.Image != "ghcr.io/x/y:1" {
		t.Fatalf("a refused update was written: %+v", g)
	}
	// the memory above today's maximum stays; other members still change
	ten := "10Gi"
	if g := must(t)(r.svc.Update(r.ctx, s.ID, session.UpdateRequest{Storage: &ten, Image: &bad})); g.Memory != "32Gi" || g.Storage != ten {
		t.Fatalf("updated: %+v", g)
	}
}

func TestRestoreGrowsNoVolumeAboveTheMaximum(t *testing.T) {
	r := newRig(t)
	_, b := r.backedUp("ann@example.com", "20Gi")
	r.svc = r.Service(session.Options{Domain: "ws.test", Limits: session.Limits{MaxStorage: "10Gi"}})
	_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "ann@example.com", RestoreFrom: b.ID})
	wantLimit(t, err, session.KindInvalid, "storage", session.LimitMaxStorage)
}

func TestCountLimits(t *testing.T) {
	r := limitedRig(t, session.Limits{MaxSessionsPerUser: 3, MaxRunningPerUser: 2})
	ann := session.CreateRequest{UserID: "ann@example.com"}
	a1, a2 := r.create(ann), r.create(ann)
	_, err := r.svc.Create(r.ctx, ann)
	wantLimit(t, err, session.KindQuota, "", session.LimitRunningPerUser)
	if !errors.Is(err, session.ErrQuota) {
		t.Fatalf("not ErrQuota: %v", err)
	}
	asleep := ann
	asleep.State = session.StateSleeping
	a3 := r.create(asleep) // a sleeping one is not running
	_, err = r.svc.Create(r.ctx, asleep)
	wantLimit(t, err, session.KindQuota, "", session.LimitSessionsPerUser)
	r.create(session.CreateRequest{UserID: "bob@example.com"}) // another user's own count
	_, err = r.svc.Wake(r.ctx, a3.ID)
	wantLimit(t, err, session.KindQuota, "", session.LimitRunningPerUser)
	if g := r.get(a3.ID); g.State != session.StateSleeping {
		t.Fatalf("a refused wake was written: %+v", g)
	}
	r.ready(a1.ID)
	must(t)(r.svc.Sleep(r.ctx, a1.ID))
	must(t)(r.svc.Wake(r.ctx, a3.ID))
	// a deleted session frees its slot
	r.ready(a2.ID)
	must(t)(r.svc.Delete(r.ctx, a2.ID, session.DeleteOptions{SkipBackup: true}))
	if g := r.get(a2.ID); g.State != session.StateDeleted {
		t.Fatalf("not deleted: %+v", g)
	}
	r.create(asleep)
}

func TestGlobalRunningLimit(t *testing.T) {
	r := limitedRig(t, session.Limits{MaxRunning: 2})
	r.create(session.CreateRequest{UserID: "a@x"})
	r.create(session.CreateRequest{UserID: "b@x"})
	_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "c@x"})
	wantLimit(t, err, session.KindQuota, "", session.LimitRunning)
	r.create(session.CreateRequest{UserID: "c@x", State: session.StateSleeping})
}

// Concurrent creates of one user never pass the last slot together: the count and the
// reservation run under one lock.
func TestConcurrentCreatesTakeTheLastSlotOnce(t *testing.T) {
	f := sessiontest.New()
	svc := f.Service(session.Options{Domain: "ws.test", Limits: session.Limits{MaxSessionsPerUser: 1}})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := svc.Create(t.Context(), session.CreateRequest{UserID: "ann@example.com"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, session.ErrQuota) && !errors.Is(err, session.ErrBusy):
			t.Errorf("create: %v", err)
		}
	}
	if ok != 1 || f.Store.Len() != 1 {
		t.Fatalf("%d creates passed, %d records; want 1", ok, f.Store.Len())
	}
}

// A wake that runs a failed restore again starts the workspace once restored, so it is held
// to the running counts as any wake is.
func TestRetriedRestoreCountsAsAWake(t *testing.T) {
	r := limitedRig(t, session.Limits{MaxRunningPerUser: 1})
	_, b := r.backedUp("ann@example.com", "")
	s := r.create(session.CreateRequest{UserID: "ann@example.com", RestoreFrom: b.ID})
	r.Cluster.FinishRestore(s.ID, 1, session.BackupFailed, "killed")
	if g := r.get(s.ID); g.State != session.StateFailed {
		t.Fatalf("after a failed restore: %+v", g)
	}
	other := r.create(session.CreateRequest{UserID: "ann@example.com"}) // the failed one is not running
	_, err := r.svc.Wake(r.ctx, s.ID)
	wantLimit(t, err, session.KindQuota, "", session.LimitRunningPerUser)
	if g := r.get(s.ID); g.State != session.StateFailed || g.Attempt != 1 {
		t.Fatalf("a refused retry was written: %+v", g)
	}
	r.ready(other.ID)
	must(t)(r.svc.Sleep(r.ctx, other.ID))
	if w := must(t)(r.svc.Wake(r.ctx, s.ID)); w.Pending != session.PendingRestore || w.Attempt != 2 {
		t.Fatalf("the retry after a slot freed: %+v", w)
	}
}
