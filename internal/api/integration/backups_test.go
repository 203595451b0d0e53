package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/client"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// TestBackupCatalogOverHTTP: a delete's real backup Job puts its archive in the catalog on the
// real Redis; GET /backups lists it (raw HTTP and the client, pages, filters), and restores the
// core must refuse (another user's archive, one that does not exist) are 400s naming
// restore_from that write nothing: no record, no Kubernetes object. Every answer is checked
// against the OpenAPI document. (Restores that run, and removals, need internal/kube's restore
// and removal Jobs.)
func TestBackupCatalogOverHTTP(t *testing.T) {
	f := newFixture(t)
	base := f.server(api.Options{}).URL
	ctx := context.Background()

	// Two workspaces of ada's, deleted with their backups.
	var locations []string
	for range 2 {
		var s session.Session
		if code, _ := f.call("POST", base+"/session/create", `{"user_id":"ada@example.com"}`, &s); code != 201 {
			t.Fatalf("create: %d %+v", code, s)
		}
		f.waitHTTP(base, s.ID, session.StateRunning)
		if code, _ := f.call("DELETE", base+"/session/"+s.ID, "", &s); code != 202 {
			t.Fatalf("delete: %d %+v", code, s)
		}
		done := f.waitHTTP(base, s.ID, session.StateDeleted)
		locations = append(locations, done.BackupLocation)
	}

	var l session.BackupList
	if code, _ := f.call("GET", base+"/backups?user_id=ada%40example.com", "", &l); code != 200 || len(l.Backups) != 2 || l.NextCursor != "" {
		t.Fatalf("list: %d %+v", code, l)
	}
	// Newest first (archive names are to the second, and kwok's Jobs end at once: the two may
	// share one, and then the ids order them).
	newest := l.Backups[0]
	if newest.CreatedAt.Before(l.Backups[1].CreatedAt) || !slices.Contains(locations, newest.Location) ||
		!slices.Contains(locations, l.Backups[1].Location) || newest.Location == l.Backups[1].Location {
		t.Fatalf("listed %q, %q; the deletes wrote %q", newest.Location, l.Backups[1].Location, locations)
	}
	for _, b := range l.Backups {
		if b.UserID != "ada@example.com" || b.State != session.BackupAvailable || b.ID != session.BackupIDOf(b.Location) ||
			b.SessionID != strings.Split(b.ID, "-")[0] || b.Storage != "5Gi" || b.ExpiresAt.Sub(b.CreatedAt) != session.DefaultBackupRetention {
			t.Fatalf("the catalog holds %+v", b)
		}
	}

	c, err := client.New(base, apiKey, client.WithHTTPClient(f.http))
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.ListBackups(ctx, session.BackupListOptions{UserID: "ada@example.com", Limit: 1})
	if err != nil || len(page.Backups) != 1 || page.Backups[0].ID != newest.ID || page.NextCursor == "" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	page, err = c.ListBackups(ctx, session.BackupListOptions{UserID: "ada@example.com", Limit: 1, Cursor: page.NextCursor})
	if err != nil || len(page.Backups) != 1 || page.Backups[0].ID != l.Backups[1].ID || page.NextCursor != "" {
		t.Fatalf("second page: %+v %v", page, err)
	}
	if page, err = c.ListBackups(ctx, session.BackupListOptions{SessionID: newest.SessionID}); err != nil || len(page.Backups) != 1 {
		t.Fatalf("by session: %+v %v", page, err)
	}
	if page, err = c.ListBackups(ctx, session.BackupListOptions{UserID: "bob@example.com"}); err != nil || len(page.Backups) != 0 {
		t.Fatalf("bob's: %+v %v", page, err)
	}

	// Refused restores write nothing: no session of bob's, no new volume, workspace or Job
	// (finished backup Jobs may be collected meanwhile: only new names count).
	objects := func() map[string]bool {
		out := map[string]bool{}
		pvcs, err := f.kube.Client.CoreV1().PersistentVolumeClaims(f.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range pvcs.Items {
			out["pvc/"+o.Name] = true
		}
		deps, err := f.kube.Client.AppsV1().Deployments(f.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range deps.Items {
			out["deployment/"+o.Name] = true
		}
		jobs, err := f.kube.Client.BatchV1().Jobs(f.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range jobs.Items {
			out["job/"+o.Name] = true
		}
		var sessions api.ListResponse
		if code, _ := f.call("GET", base+"/sessions?user_id=bob%40example.com", "", &sessions); code != 200 || sessions.Count != 0 {
			t.Fatalf("bob's sessions: %d %+v", code, sessions)
		}
		return out
	}
	before := objects()
	for _, from := range []string{newest.ID, newest.Location, newest.SessionID, "zz999999", "zz999999-20200101T000000Z", "s3://x/y.zip"} {
		var e wire.ErrorBody
		body := fmt.Sprintf(`{"user_id":"bob@example.com","restore_from":%q}`, from)
		if code, _ := f.call("POST", base+"/session/create", body, &e); code != 400 || e.Error.Field != "restore_from" {
			t.Fatalf("bob restores %q: %d %+v", from, code, e)
		}
		if from == newest.ID && strings.Contains(e.Error.Message, "ada") {
			t.Fatalf("the refusal tells bob whose archive it is: %s", e.Error.Message)
		}
	}
	if _, err := c.Create(ctx, session.CreateRequest{UserID: "bob@example.com", RestoreFrom: newest.ID}); session.FieldOf(err) != "restore_from" {
		t.Fatalf("through the client: %v", err)
	}
	for name := range objects() {
		if !before[name] {
			t.Fatalf("a refused restore made %s", name)
		}
	}

	// Removal by id: an unknown id is a 404, a malformed one a 400 naming backup_id.
	var e wire.ErrorBody
	if code, _ := f.call("DELETE", base+"/backups/zz999999-20200101T000000Z", "", &e); code != 404 || e.Error.Code != "not_found" {
		t.Fatalf("unknown backup: %d %+v", code, e)
	}
	if code, _ := f.call("DELETE", base+"/backups/not-an-id", "", &e); code != 400 || e.Error.Field != "backup_id" {
		t.Fatalf("malformed id: %d %+v", code, e)
	}
	if _, err := c.DeleteBackup(ctx, "zz999999-20200101T000000Z"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("unknown backup through the client: %v", err)
	}
	if rec, err := f.store.GetBackup(ctx, newest.ID); err != nil || rec.State != session.BackupAvailable {
		t.Fatalf("the archive's record changed: %+v %v", rec, err)
	}
}
