package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

const backupsName = "data.hyperbola_backups.mine"

// The data source lists a user's archives, newest first: one a real delete made (its backup
// Job on the local cluster) and two older ones in the catalog; another user's is left out,
// and session_id narrows to one workspace's.
func TestAccBackupsDataSource_ListsAUsersArchives(t *testing.T) {
	eachMode(t, func(t *testing.T, a *acc) {
		deleted := a.deletedWorkspace(t, "acc@example.com")
		older := a.seedBackup(t, "acc@example.com", "cd34ef56", time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC))
		oldest := a.seedBackup(t, "acc@example.com", "ef56ab12", time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC))
		a.seedBackup(t, "someone@example.com", "ab12cd34", time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
		tfresource.Test(t, tfresource.TestCase{
			ProtoV6ProviderFactories: a.factories,
			Steps: []tfresource.TestStep{{
				Config: a.provider + fmt.Sprintf(`
data "hyperbola_backups" "mine" {
  user_id = "acc@example.com"
}
data "hyperbola_backups" "one" {
  session_id = %q
}
`, deleted.ID),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(backupsName, "backups.#", "3"),
					tfresource.TestCheckResourceAttr(backupsName, "backups.0.session_id", deleted.ID),
					tfresource.TestCheckResourceAttr(backupsName, "backups.0.id", session.BackupIDOf(deleted.BackupLocation)),
					tfresource.TestCheckResourceAttr(backupsName, "backups.0.location", deleted.BackupLocation),
					tfresource.TestCheckResourceAttr(backupsName, "backups.0.user_id", "acc@example.com"),
					tfresource.TestCheckResourceAttr(backupsName, "backups.0.storage", deleted.Storage),
					tfresource.TestCheckResourceAttr(backupsName, "backups.0.status", "available"),
					tfresource.TestCheckResourceAttrSet(backupsName, "backups.0.created_at"),
					tfresource.TestCheckResourceAttrSet(backupsName, "backups.0.size_bytes"),
					tfresource.TestCheckResourceAttr(backupsName, "backups.1.id", older.ID),
					tfresource.TestCheckResourceAttr(backupsName, "backups.1.created_at", "2026-02-01T10:00:00Z"),
					tfresource.TestCheckResourceAttr(backupsName, "backups.2.id", oldest.ID),
					tfresource.TestCheckResourceAttr(backupsName, "backups.2.size_bytes", "4096"),
					tfresource.TestCheckResourceAttr("data.hyperbola_backups.one", "backups.#", "1"),
					tfresource.TestCheckResourceAttr("data.hyperbola_backups.one", "backups.0.location", deleted.BackupLocation),
				),
			}},
		})
	})
}

// deletedWorkspace makes a workspace of userID outside Terraform and deletes it, backed up by
// a real backup Job on the local cluster; it waits (on the namespace's changes) until the
// workspace is deleted.
func (a *acc) deletedWorkspace(t *testing.T, userID string) *session.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := a.svc.Create(ctx, session.CreateRequest{UserID: userID})
	if err != nil {
		t.Fatal(err)
	}
	if s, err = a.svc.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	changed := testenv.Changes(ctx, t, a.kube.Client, a.ns)
	tick := time.NewTicker(time.Second) // a pending step may wait on time, not on an object
	defer tick.Stop()
	for s.State != session.StateDeleted {
		if s.State == session.StateFailed {
			t.Fatalf("deleting %s: %s", s.ID, s.Reason)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("workspace %s was not deleted: %s (%s)", s.ID, s.State, s.Pending)
		case <-changed:
		case <-tick.C:
		}
		if s, err = a.svc.Get(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	if s.BackupLocation == "" {
		t.Fatalf("workspace %s was deleted without a backup", s.ID)
	}
	return s
}
