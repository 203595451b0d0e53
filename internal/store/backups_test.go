package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// backupSuite runs on miniredis and redis-server, as suite does.
var backupSuite = []struct {
	name string
	fn   func(*testing.T, *backend)
}{
	{"BackupRoundTrip", testBackupRoundTrip},
	{"BackupListing", testBackupListing},
	{"BackupStates", testBackupStates},
}

func TestBackupsMiniredis(t *testing.T) {
	for _, c := range backupSuite {
		t.Run(c.name, func(t *testing.T) { c.fn(t, miniBackend(t)) })
	}
}

func TestBackupsRedis(t *testing.T) {
	for _, c := range backupSuite {
		t.Run(c.name, func(t *testing.T) { c.fn(t, realBackend(t)) })
	}
}

// newBackup is an available archive of session sid (user's) taken at t.
func newBackup(sid, user string, t time.Time) *session.BackupRecord {
	id := sid + "-" + t.UTC().Format("20060102T150405Z")
	return &session.BackupRecord{ID: id, SessionID: sid, UserID: user, Location: "pvc://hyperbola-backups/" + sid + "/" + id + ".zip",
		Bytes: 1234, Storage: "5Gi", CreatedAt: t.UTC().Truncate(time.Second), ExpiresAt: t.UTC().Truncate(time.Second).Add(30 * 24 * time.Hour),
		State: session.BackupAvailable}
}

func testBackupRoundTrip(t *testing.T, b *backend) {
	ctx := t.Context()
	s := b.store(newClock(), time.Hour)
	in := newBackup("ab12cd34", "alice@example.com", time.Date(2026, 11, 26, 2, 3, 4, 0, time.UTC))
	if err := s.PutBackup(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBackup(ctx, in.ID)
	if err != nil || *got != *in {
		t.Fatalf("GetBackup = %+v, %v; want %+v", got, err, in)
	}
	if _, err := s.GetBackup(ctx, "zz999999-20260101T000000Z"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if err := s.RemoveBackup(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveBackup(ctx, in.ID); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if ks := b.keys(t); len(ks) != 0 {
		t.Fatalf("keys left after RemoveBackup: %v", ks)
	}
	for _, bad := range []*session.BackupRecord{
		{ID: "nope", UserID: "a"}, {ID: "ab12cd34-20261126T020304Z", UserID: ""},
	} {
		if err := s.PutBackup(ctx, bad); err == nil {
			t.Fatalf("PutBackup(%+v) took it", bad)
		}
	}
}

func testBackupListing(t *testing.T, b *backend) {
	ctx := t.Context()
	s := b.store(newClock(), time.Hour)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var alice []string
	// two sessions' archives, interleaved in time, and ties (the same second) across sessions
	for i := range 6 {
		at := t0.Add(time.Duration(i/2) * time.Hour)
		sid := []string{"aa000001", "aa000002"}[i%2]
		r := newBackup(sid, "alice@example.com", at)
		if err := s.PutBackup(ctx, r); err != nil {
			t.Fatal(err)
		}
		alice = append(alice, r.ID)
		if err := s.PutBackup(ctx, newBackup("bb000001", "bob", at.Add(time.Minute))); err != nil { // 3 of them: the same second twice
			t.Fatal(err)
		}
	}
	// newest first, ties by id descending
	slices.SortFunc(alice, func(x, y string) int {
		tx, _ := session.BackupTime(x)
		ty, _ := session.BackupTime(y)
		if c := ty.Compare(tx); c != 0 {
			return c
		}
		return -compareStrings(x, y)
	})
	page := func(o session.BackupListOptions) []string {
		var out []string
		for {
			l, err := s.ListBackups(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range l.Backups {
				out = append(out, r.ID)
			}
			if l.NextCursor == "" {
				return out
			}
			o.Cursor = l.NextCursor
		}
	}
	for _, limit := range []int{1, 2, 4, 100} {
		if got := page(session.BackupListOptions{UserID: "alice@example.com", Limit: limit}); !slices.Equal(got, alice) {
			t.Fatalf("limit %d: %v, want %v", limit, got, alice)
		}
	}
	var one []string
	for _, id := range alice {
		if id[:8] == "aa000002" {
			one = append(one, id)
		}
	}
	if got := page(session.BackupListOptions{SessionID: "aa000002", Limit: 2}); !slices.Equal(got, one) {
		t.Fatalf("by session: %v, want %v", got, one)
	}
	if got := page(session.BackupListOptions{SessionID: "aa000002", UserID: "bob", Limit: 2}); len(got) != 0 {
		t.Fatalf("a session's archives under another user: %v", got)
	}
	if got := page(session.BackupListOptions{Limit: 3}); len(got) != len(alice)+3 {
		t.Fatalf("everything: %d archives, want %d", len(got), len(alice)+3)
	}
	if _, err := s.ListBackups(ctx, session.BackupListOptions{Cursor: "!!"}); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("a bad cursor: %v", err)
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testBackupStates(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	s := b.store(c, time.Hour)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	old := newBackup("aa000001", "alice@example.com", t0)
	young := newBackup("aa000002", "alice@example.com", t0.Add(20*24*time.Hour))
	forever := newBackup("aa000003", "alice@example.com", t0)
	forever.ExpiresAt = time.Time{}
	for _, r := range []*session.BackupRecord{old, young, forever} {
		if err := s.PutBackup(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(rs []*session.BackupRecord, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	at := t0.Add(31 * 24 * time.Hour)
	if got := ids(s.ExpiredBackups(ctx, at, 10)); !slices.Equal(got, []string{old.ID}) {
		t.Fatalf("expired at +31d: %v", got)
	}
	if got := ids(s.ExpiredBackups(ctx, at.Add(365*24*time.Hour), 10)); !slices.Equal(got, []string{old.ID, young.ID}) {
		t.Fatalf("expired a year on: %v (never the one without an expiry)", got)
	}
	// being removed: out of the expiry index, in the removal index; back to available: the reverse
	old.State, old.Removal = session.BackupRemoving, "hyperbola-rm-0123456789ab"
	if err := s.PutBackup(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.ExpiredBackups(ctx, at, 10)); len(got) != 0 {
		t.Fatalf("a removing archive is still due: %v", got)
	}
	if got := ids(s.RemovingBackups(ctx, 10)); !slices.Equal(got, []string{old.ID}) {
		t.Fatalf("removing: %v", got)
	}
	old.State, old.Removal, old.Reason = session.BackupAvailable, "", "rm: permission denied"
	if err := s.PutBackup(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.RemovingBackups(ctx, 10)); len(got) != 0 {
		t.Fatalf("removing after it failed: %v", got)
	}
	if got := ids(s.ExpiredBackups(ctx, at, 10)); !slices.Equal(got, []string{old.ID}) {
		t.Fatalf("expired after a failed removal: %v", got)
	}
	// a record whose key went (by hand) is skipped, not an error
	if err := b.rdb.Del(ctx, b.prefix+"b:"+old.ID).Err(); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.ExpiredBackups(ctx, at, 10)); len(got) != 0 {
		t.Fatalf("a vanished record: %v", got)
	}
}
