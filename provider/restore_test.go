package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Unit tests of restore_from: terraform against the session core on sessiontest's ports, whose
// delete zips into pvc://backups/<id>/ and whose restore Jobs succeed at once unless told.

// deletedWorkspace makes a workspace of userID with storage outside Terraform and deletes it
// (backed up): it answers the deleted workspace's id and its backup's location.
func deletedWorkspace(t *testing.T, c *core, userID, storage string) (id, location string) {
	t.Helper()
	ctx := context.Background()
	s, err := c.svc.Create(ctx, session.CreateRequest{UserID: userID, Storage: storage})
	if err != nil {
		t.Fatal(err)
	}
	c.Clock.Add(time.Second) // a backup id holds the second it was taken
	if s, err = c.svc.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10 && s.State == session.StateDeleting; i++ { // each Get moves the backup on
		if s, err = c.svc.Get(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	if s.State != session.StateDeleted || s.BackupLocation == "" {
		t.Fatalf("deleting %s: %+v, want deleted with a backup", s.ID, s)
	}
	return s.ID, s.BackupLocation
}

func newRestoreCore(t *testing.T) *core {
	t.Helper()
	c := newCore(t)
	c.Cluster.SetAutoRestore(session.BackupSucceeded)
	return c
}

// restore_from keeps what the configuration says (a deleted workspace's id), restored_from
// reports the archive it resolved to, and storage reads back the original's larger size:
// none of it is a diff. Naming the same archive another way, or removing restore_from,
// changes only the state; naming another archive replaces the workspace.
func TestWorkspace_RestoreFrom(t *testing.T) {
	needTerraform(t)
	c := newRestoreCore(t)
	oldID, location := deletedWorkspace(t, c, "dev@example.com", "10Gi")
	otherID, otherLocation := deletedWorkspace(t, c, "dev@example.com", "")
	backupID := session.BackupIDOf(location)
	var id, replaced string
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{
				Config: wsConfig(fmt.Sprintf("  restore_from = %q", oldID)),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					captureID(wsName, &id),
					tfresource.TestCheckResourceAttr(wsName, "restore_from", oldID),
					tfresource.TestCheckResourceAttr(wsName, "restored_from", location),
					tfresource.TestCheckResourceAttrSet(wsName, "restored_at"),
					tfresource.TestCheckResourceAttr(wsName, "status", "running"),
					tfresource.TestCheckResourceAttr(wsName, "storage", "10Gi"),
					func(*terraform.State) error {
						if got := c.Cluster.RestoredFrom(id, 1); got != location {
							return fmt.Errorf("workspace %s was restored from %q, want %q", id, got, location)
						}
						return nil
					},
				),
			},
			{ // refreshed: no diff
				Config:   wsConfig(fmt.Sprintf("  restore_from = %q", oldID)),
				PlanOnly: true,
			},
			{
				ResourceName:            wsName,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"password", "restore_from"},
				ImportStateCheck: func(s []*terraform.InstanceState) error {
					if len(s) != 1 || s[0].Attributes["restore_from"] != "" || s[0].Attributes["restored_from"] != location {
						return fmt.Errorf("imported: %v, want restore_from null and restored_from %s", s[0].Attributes, location)
					}
					return nil
				},
			},
			{ // the same archive by its backup id: in place
				Config: wsConfig(fmt.Sprintf("  restore_from = %q", backupID)),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
				}},
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttrPtr(wsName, "id", &id),
					tfresource.TestCheckResourceAttr(wsName, "restore_from", backupID),
				),
			},
			{ // and by its location
				Config: wsConfig(fmt.Sprintf("  restore_from = %q", location)),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
				}},
			},
			{ // removed: in place
				Config: wsConfig(""),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
				}},
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttrPtr(wsName, "id", &id),
					tfresource.TestCheckNoResourceAttr(wsName, "restore_from"),
					tfresource.TestCheckResourceAttr(wsName, "restored_from", location),
				),
			},
			{ // another archive: a new workspace
				Config: wsConfig(fmt.Sprintf("  restore_from = %q", otherID)),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: tfresource.ComposeAggregateTestCheckFunc(
					captureID(wsName, &replaced),
					tfresource.TestCheckResourceAttr(wsName, "restored_from", otherLocation),
					func(*terraform.State) error {
						if replaced == id {
							return fmt.Errorf("restoring another backup kept workspace %s", id)
						}
						return nil
					},
				),
			},
		},
	})
	if n := c.calls("Create"); n != 2 {
		t.Errorf("create called %d times, want 2 (one replacement)", n)
	}
}

// A workspace that was not restored plans restored_at as null, not unknown: an in-place
// change shows no restore attribute.
func TestWorkspace_NotRestoredPlansNoRestore(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{
				Config: wsConfig(`  idle_timeout = "30m"`),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckNoResourceAttr(wsName, "restore_from"),
					tfresource.TestCheckNoResourceAttr(wsName, "restored_from"),
					tfresource.TestCheckNoResourceAttr(wsName, "restored_at"),
				),
			},
			{
				Config: wsConfig(`  idle_timeout = "45m"`),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(wsName, tfjsonpath.New("restored_at"), knownvalue.Null()),
					plancheck.ExpectKnownValue(wsName, tfjsonpath.New("restored_from"), knownvalue.Null()),
				}},
			},
		},
	})
}

// The session core refuses another user's backup, a missing one and one too big for the
// storage asked for: the diagnostic is on the attribute, and nothing is created.
func TestWorkspace_RestoreFromRefused(t *testing.T) {
	needTerraform(t)
	c := newRestoreCore(t)
	foreign, _ := deletedWorkspace(t, c, "someone@example.com", "")
	_, big := deletedWorkspace(t, c, "dev@example.com", "")
	c.Cluster.PutArchive(big, session.Archive{Bytes: 1 << 30, Files: 1, Uncompressed: 8 << 30})
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{
				Config:      wsConfig(fmt.Sprintf("  restore_from = %q", foreign)),
				ExpectError: attrError("Cannot create workspace", "restore_from", fmt.Sprintf(`no backup %q of user "dev@example.com"`, foreign)),
			},
			{
				Config:      wsConfig(`  restore_from = "zz999999-20260101T000000Z"`),
				ExpectError: attrError("Cannot create workspace", "restore_from", `no backup "zz999999-20260101T000000Z"`),
			},
			{
				Config:      wsConfig(fmt.Sprintf("  restore_from = %q\n  storage = \"2Gi\"", big)),
				ExpectError: attrError("Cannot create workspace", "storage", "cannot hold the 8Gi of files"),
			},
		},
	})
	if n := len(c.spy.Calls("Create")); n != 3 {
		t.Errorf("create called %d times, want 3", n)
	}
	page, err := c.svc.List(context.Background(), session.ListOptions{UserID: "dev@example.com", State: session.StateCreating})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Sessions) != 0 {
		t.Errorf("refused restores created %d workspaces", len(page.Sessions))
	}
}

// A restore whose Job fails fails the apply on restore_from with the reason, and the
// workspace stays in state, tainted: the next apply replaces it.
func TestWorkspace_RestoreFailed(t *testing.T) {
	needTerraform(t)
	c := newRestoreCore(t)
	c.Cluster.SetAutoRestore(session.BackupFailed)
	oldID, _ := deletedWorkspace(t, c, "dev@example.com", "")
	var id string
	cfg := wsConfig(fmt.Sprintf("  restore_from = %q", oldID))
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{
				Config:      cfg,
				ExpectError: attrError("Restore failed", "restore_from", "unzip: write error (disk full?)"),
			},
			{
				PreConfig: func() { c.Cluster.SetAutoRestore(session.BackupSucceeded) },
				Config:    cfg,
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: tfresource.ComposeAggregateTestCheckFunc(
					captureID(wsName, &id),
					tfresource.TestCheckResourceAttr(wsName, "status", "running"),
					tfresource.TestCheckResourceAttrSet(wsName, "restored_at"),
				),
			},
		},
	})
}

// Malformed restore_from values fail at plan, naming the attribute, and never reach the Manager.
func TestWorkspace_RestoreFromPlanTimeValidation(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	var steps []tfresource.TestStep
	for _, b := range []struct{ value, want string }{
		{"yesterday", `restore_from "yesterday" is not a backup location, a backup id`},
		{"pvc://hyperbola-backups/ab12cd34/backup.tar", `restore_from "pvc://hyperbola-backups/ab12cd34/backup.tar" is not a backup location`},
		{"ab12cd34-2026", `is not a backup location, a backup id`},
		{" ab12cd34", `has surrounding spaces`},
	} {
		steps = append(steps, tfresource.TestStep{
			Config:      wsConfig(fmt.Sprintf("  restore_from = %q", b.value)),
			PlanOnly:    true,
			ExpectError: attrError("Invalid restore from", "restore_from", b.want),
		})
	}
	tfresource.UnitTest(t, tfresource.TestCase{ProtoV6ProviderFactories: fakeFactories(c.spy), Steps: steps})
	if n := c.calls(""); n != 0 {
		t.Errorf("the Manager was called %d times (%v), want none", n, c.spy.Calls(""))
	}
}

func TestCheckRestoreFrom(t *testing.T) {
	for ref, ok := range map[string]bool{
		"ab12cd34":                  true,
		"ab12cd34-20261126T020304Z": true,
		"pvc://hyperbola-backups/ab12cd34/ab12cd34-20261126T020304Z.zip": true,
		"pvc://hyperbola-backups/ab12cd34/zz12cd34-20261126T020304Z.zip": false, // not that session's
		"pvc://hyperbola-backups/ab12cd34-20261126T020304Z.zip":          false,
		"s3://bucket/ab12cd34-20261126T020304Z.zip":                      false,
		"1b12cd34":                   false,
		"ab12cd34-2026-11-26":        false,
		"AB12CD34":                   false,
		"ab12cd34-20261126T020304Z ": false,
		"":                           false,
	} {
		if err := checkRestoreFrom(ref); (err == nil) != ok {
			t.Errorf("checkRestoreFrom(%q) = %v, want ok %v", ref, err, ok)
		}
	}
}

func TestRefersTo(t *testing.T) {
	loc := "pvc://hyperbola-backups/ab12cd34/ab12cd34-20261126T020304Z.zip"
	for ref, want := range map[string]bool{
		loc:                         true,
		"ab12cd34-20261126T020304Z": true,
		"ab12cd34":                  true,
		"ab12cd34-20261127T020304Z": false,
		"cd12ab34":                  false,
		"pvc://other/ab12cd34/ab12cd34-20261126T020304Z.zip": false,
		"": false,
	} {
		if got := refersTo(ref, loc); got != want {
			t.Errorf("refersTo(%q) = %v, want %v", ref, got, want)
		}
	}
	if refersTo("ab12cd34", "") {
		t.Error("a workspace that was not restored refers to no archive")
	}
}
