package provider

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// seedBackups records n archives of userID in the fake catalog, one per workspace
// ("<prefix>0000000", ...), a minute apart: newest is the last.
func seedBackups(t *testing.T, c *core, userID, prefix string, n int) []*session.BackupRecord {
	t.Helper()
	var out []*session.BackupRecord
	for i := range n {
		sid := fmt.Sprintf("%s%07d", prefix, i)
		at := sessiontest.Epoch.Add(time.Duration(i) * time.Minute)
		id := sid + "-" + at.Format("20060102T150405Z")
		rec := &session.BackupRecord{
			ID: id, SessionID: sid, UserID: userID, Location: "pvc://backups/" + sid + "/" + id + ".zip",
			Bytes: int64(1000 + i), Storage: "5Gi", CreatedAt: at, ExpiresAt: at.Add(30 * 24 * time.Hour),
			State: session.BackupAvailable,
		}
		if err := c.Store.PutBackup(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// The data source reads every page of the catalog (more than one page here), newest first,
// filtered by user and by workspace.
func TestBackupsDataSource(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	n := listPageSize + 5
	mine := seedBackups(t, c, "dev@example.com", "p", n)
	seedBackups(t, c, "someone@example.com", "q", 3)
	newest := mine[n-1]
	const name = "data.hyperbola_backups.mine"
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{{
			Config: fakeProviderBlock + fmt.Sprintf(`
data "hyperbola_backups" "mine" {
  user_id = "dev@example.com"
}
data "hyperbola_backups" "one" {
  session_id = %q
}
data "hyperbola_backups" "all" {}
`, mine[3].SessionID),
			Check: tfresource.ComposeAggregateTestCheckFunc(
				tfresource.TestCheckResourceAttr(name, "backups.#", strconv.Itoa(n)),
				tfresource.TestCheckResourceAttr(name, "backups.0.id", newest.ID),
				tfresource.TestCheckResourceAttr(name, "backups.0.session_id", newest.SessionID),
				tfresource.TestCheckResourceAttr(name, "backups.0.user_id", "dev@example.com"),
				tfresource.TestCheckResourceAttr(name, "backups.0.location", newest.Location),
				tfresource.TestCheckResourceAttr(name, "backups.0.size_bytes", strconv.FormatInt(newest.Bytes, 10)),
				tfresource.TestCheckResourceAttr(name, "backups.0.storage", "5Gi"),
				tfresource.TestCheckResourceAttr(name, "backups.0.created_at", newest.CreatedAt.Format(time.RFC3339)),
				tfresource.TestCheckResourceAttr(name, "backups.0.expires_at", newest.ExpiresAt.Format(time.RFC3339)),
				tfresource.TestCheckResourceAttr(name, "backups.0.status", "available"),
				tfresource.TestCheckResourceAttr(name, fmt.Sprintf("backups.%d.id", n-1), mine[0].ID),
				tfresource.TestCheckResourceAttr("data.hyperbola_backups.one", "backups.#", "1"),
				tfresource.TestCheckResourceAttr("data.hyperbola_backups.one", "backups.0.id", mine[3].ID),
				// more than a page (the fake catalog pages as the store does)
				tfresource.TestCheckResourceAttr("data.hyperbola_backups.all", "backups.#", strconv.Itoa(n+3)),
			),
		}},
	})
}

// Bad filters fail at plan, naming the attribute; none listed is an empty list.
func TestBackupsDataSource_FiltersAndEmpty(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{
				Config:      fakeProviderBlock + "data \"hyperbola_backups\" \"x\" {\n  session_id = \"Not-An-Id\"\n}\n",
				ExpectError: attrError("Invalid session id", "session_id", "session id must be 8 characters of [a-z0-9]"),
			},
			{
				Config: fakeProviderBlock + "data \"hyperbola_backups\" \"x\" {\n  user_id = \"nobody@example.com\"\n}\n",
				Check:  tfresource.TestCheckResourceAttr("data.hyperbola_backups.x", "backups.#", "0"),
			},
		},
	})
}
