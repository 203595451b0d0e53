package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// Unit tests: terraform runs against the provider with the real session core on in-memory
// ports (sessiontest; no TF_ACC needed).

const wsName = "hyperbola_workspace.w"

func wsConfig(attrs string) string {
	return fakeProviderBlock + fmt.Sprintf(`
resource "hyperbola_workspace" "w" {
  user_id = "dev@example.com"
%s
}
`, attrs)
}

func TestWorkspace_Lifecycle(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	var id, password string
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{
				Config: wsConfig(`
  storage      = "5Gi"
  idle_timeout = "30m"
  labels       = { team = "platform" }`),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					captureID(wsName, &id),
					tfresource.TestCheckResourceAttr(wsName, "status", "running"),
					tfresource.TestCheckResourceAttr(wsName, "state", "running"),
					tfresource.TestCheckResourceAttr(wsName, "storage", "5Gi"),
					tfresource.TestCheckResourceAttr(wsName, "idle_timeout", "30m"),
					tfresource.TestCheckResourceAttr(wsName, "backup_on_delete", "true"),
					tfresource.TestCheckResourceAttr(wsName, "wait_for_ready", "true"),
					tfresource.TestCheckResourceAttr(wsName, "labels.team", "platform"),
					tfresource.TestCheckResourceAttrSet(wsName, "password"),
					captureAttr(wsName, "password", &password),
					tfresource.TestCheckResourceAttrSet(wsName, "created_at"),
					tfresource.TestCheckResourceAttrWith(wsName, "workspace_url", func(v string) error {
						if want := session.WorkspaceURL(id, session.DefaultDomain); v != want {
							return fmt.Errorf("workspace_url %q, want %q", v, want)
						}
						return nil
					}),
				),
			},
			{
				ResourceName:            wsName,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"password"},
			},
			{
				Config: wsConfig(`
  state        = "sleeping"
  storage      = "5Gi"
  idle_timeout = "30m"
  labels       = { team = "platform" }`),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
				}},
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(wsName, "status", "sleeping"),
					tfresource.TestCheckResourceAttr(wsName, "state", "sleeping"),
					tfresource.TestCheckResourceAttrPtr(wsName, "password", &password),
				),
			},
			{
				Config: wsConfig(`
  state        = "running"
  storage      = "5Gi"
  idle_timeout = "30m"
  labels       = { team = "platform" }`),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(wsName, "status", "running"),
					tfresource.TestCheckResourceAttr(wsName, "state", "running"),
				),
			},
			{
				Config: wsConfig(`
  state        = "running"
  storage      = "10Gi"
  idle_timeout = "30m"`),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
				}},
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(wsName, "storage", "10Gi"),
					tfresource.TestCheckNoResourceAttr(wsName, "labels.%"),
					func(*terraform.State) error {
						s, err := c.session(id)
						if err != nil {
							return err
						}
						if s.Storage != "10Gi" || len(s.Labels) != 0 {
							return fmt.Errorf("workspace has storage %s labels %v, want 10Gi and none", s.Storage, s.Labels)
						}
						return nil
					},
				),
			},
			{
				Config: wsConfig(`
  state        = "running"
  storage      = "5Gi"
  idle_timeout = "30m"`),
				PlanOnly:    true,
				ExpectError: words("Storage cannot shrink"),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			s, err := c.session(id)
			if err != nil {
				return fmt.Errorf("workspace %s after destroy: %w", id, err)
			}
			if s.State != session.StateDeleted || s.BackupLocation == "" {
				return fmt.Errorf("workspace %s after destroy: %+v, want deleted with a backup location", id, s)
			}
			return nil
		},
	})
	if n := c.calls("Create"); n != 1 {
		t.Errorf("create called %d times, want 1 (no replacement)", n)
	}
}

// ttl: "0" makes a workspace that never expires; unset, the deployment's SESSION_TTL applies
// and reads back; a change updates the workspace in place, counted from its creation.
func TestWorkspace_TTL(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	var id string
	expires := func(want func(s *session.Session) time.Time) tfresource.TestCheckFunc {
		return func(*terraform.State) error {
			s, err := c.session(id)
			if err != nil {
				return err
			}
			if w := want(s); !s.ExpiresAt.Equal(w) {
				return fmt.Errorf("workspace %s expires at %v, want %v", id, s.ExpiresAt, w)
			}
			return nil
		}
	}
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{
				Config: wsConfig(`  ttl = "0"`),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					captureID(wsName, &id),
					tfresource.TestCheckResourceAttr(wsName, "ttl", "0"),
					expires(func(*session.Session) time.Time { return time.Time{} }),
				),
			},
			{
				ResourceName:            wsName,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"password"},
			},
			{
				Config: wsConfig(`  ttl = "72h"`),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
				}},
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(wsName, "ttl", "72h"),
					expires(func(s *session.Session) time.Time { return s.CreatedAt.Add(72 * time.Hour) }),
				),
			},
			{
				Config: wsConfig(`  ttl = "0s"`),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
				}},
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(wsName, "ttl", "0s"),
					expires(func(*session.Session) time.Time { return time.Time{} }),
				),
			},
		},
	})
	if n := c.calls("Create"); n != 1 {
		t.Errorf("create called %d times, want 1 (ttl changes in place)", n)
	}

	// Unset: the deployment's lifetime applies and reads back.
	g := newCore(t)
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(g.spy),
		Steps: []tfresource.TestStep{{
			Config: wsConfig(``),
			Check:  tfresource.TestCheckResourceAttr(wsName, "ttl", "24h"),
		}},
	})
}

// The idle sweep puts the workspace to sleep: no change is planned unless the configuration
// pins state = "running".
func TestWorkspace_SweepDrift(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	var id string
	sweep := func() { // as the idle sweep does, past the provider
		if _, err := c.svc.Sleep(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{Config: wsConfig(""), Check: captureID(wsName, &id)},
			{ // state unset: the sleep is followed, no diff
				PreConfig: sweep,
				Config:    wsConfig(""),
				PlanOnly:  true,
			},
			{ // and a change elsewhere does not wake it either
				Config: wsConfig(`  cpu = "500m"`),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(wsName, "status", "sleeping"),
					tfresource.TestCheckResourceAttr(wsName, "state", "sleeping"),
					tfresource.TestCheckResourceAttr(wsName, "cpu", "500m"),
				),
			},
			{ // state pinned to running: the sleep is drift
				Config:             wsConfig(`  cpu = "500m"` + "\n" + `  state = "running"`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config: wsConfig(`  cpu = "500m"` + "\n" + `  state = "running"`),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(wsName, tfjsonpath.New("state"), knownvalue.StringExact("running")),
				}},
				Check: tfresource.TestCheckResourceAttr(wsName, "status", "running"),
			},
			{ // asleep again while pinned: planned as a wake
				PreConfig:          sweep,
				Config:             wsConfig(`  cpu = "500m"` + "\n" + `  state = "running"`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
	if n := c.calls("Wake"); n != 1 {
		t.Errorf("wake called %d times, want 1", n)
	}
}

// A workspace deleted outside Terraform is removed from state and planned for creation.
func TestWorkspace_OutOfBandDelete(t *testing.T) {
	needTerraform(t)
	for _, tc := range []struct {
		name string
		gone func(t *testing.T, c *core, id string)
	}{
		{"not found", func(t *testing.T, c *core, id string) { // its tombstone expired
			deleteOutOfBand(t, c, id)
			c.Clock.Add(sessiontest.TombstoneTTL + time.Second)
		}},
		{"tombstone", deleteOutOfBand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t)
			var first, second string
			tfresource.UnitTest(t, tfresource.TestCase{
				ProtoV6ProviderFactories: fakeFactories(c.spy),
				Steps: []tfresource.TestStep{
					{Config: wsConfig(""), Check: captureID(wsName, &first)},
					{
						PreConfig: func() { tc.gone(t, c, first) },
						Config:    wsConfig(""),
						ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionCreate),
						}},
						Check: captureID(wsName, &second),
					},
				},
			})
			if first == "" || first == second {
				t.Errorf("ids %q then %q: want a new workspace", first, second)
			}
		})
	}
}

// deleteOutOfBand deletes workspace id past the provider (another client, the expiry sweep),
// to its tombstone.
func deleteOutOfBand(t *testing.T, c *core, id string) {
	t.Helper()
	if s, err := c.svc.Delete(context.Background(), id, session.DeleteOptions{SkipBackup: true}); err != nil || s.State != session.StateDeleted {
		t.Fatalf("deleting %s out of band: %+v %v, want deleted", id, s, err)
	}
}

// Bad values fail at plan, naming the attribute, and never reach the Manager.
func TestWorkspace_PlanTimeValidation(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	bad := []struct{ attrs, want string }{
		{`state = "paused"`, `Attribute state value must be one of`},
		{`storage = "5 gigs"`, `storage "5 gigs" is not a quantity`},
		{`idle_timeout = "-5m"`, `idle_timeout: duration "-5m" must not be negative`},
		{`idle_timeout = "soon"`, `idle_timeout: duration "soon": use a form such as`},
		{`idle_timeout = "30s"`, `idle_timeout must be at least 1m`},
		{`ttl = "30m"`, `ttl must be at least 1h, or 0 to never expire`},
		{`ttl = "forever"`, `ttl: duration "forever": use a form such as`},
		{`ttl = "-1h"`, `ttl: duration "-1h" must not be negative`},
		{`cpu = "lots"`, `cpu "lots" is not a quantity`},
		{`image = "has space"`, `image "has space" is not an image reference`},
		{`labels = { "hyperbola.dev/session" = "x" }`, `uses the reserved prefix "hyperbola.dev/"`},
	}
	var steps []tfresource.TestStep
	for _, b := range bad {
		steps = append(steps, tfresource.TestStep{Config: wsConfig("  " + b.attrs), PlanOnly: true, ExpectError: words(b.want)})
	}
	steps = append(steps, tfresource.TestStep{
		Config: fakeProviderBlock + `
resource "hyperbola_workspace" "w" {
  user_id = ""
}`,
		PlanOnly:    true,
		ExpectError: words(`user_id is required`),
	})
	tfresource.UnitTest(t, tfresource.TestCase{ProtoV6ProviderFactories: fakeFactories(c.spy), Steps: steps})
	if n := c.calls(""); n != 0 {
		t.Errorf("the Manager was called %d times (%v), want none", n, c.spy.Calls(""))
	}
}

// A failed backup fails the destroy, keeps the workspace in state, and the next destroy
// tries again.
func TestWorkspace_BackupFailure(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	var id string
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{Config: wsConfig(""), Check: captureID(wsName, &id)},
			{
				PreConfig:   func() { c.Cluster.SetAutoBackupFor(id, session.BackupFailed) },
				Config:      fakeProviderBlock,
				ExpectError: words("Backup failed, volume kept"),
			},
			{
				PreConfig: func() { c.Cluster.SetAutoBackupFor(id, session.BackupSucceeded) },
				Config:    fakeProviderBlock,
				Check: func(*terraform.State) error {
					s, err := c.svc.Get(context.Background(), id)
					if err != nil {
						return fmt.Errorf("after the second destroy: %w", err)
					}
					if s.State != session.StateDeleted {
						return fmt.Errorf("after the second destroy: %+v, want deleted", s)
					}
					return nil
				},
			},
		},
	})
	if n := c.calls("Delete"); n != 2 {
		t.Errorf("delete called %d times, want 2", n)
	}
}

func TestWorkspace_CreateAsleepAndNoWait(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	c.Cluster.SetAutoReady(false) // the pod is not ready until the refresh below
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{
				Config: wsConfig(`  state = "sleeping"`),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(wsName, "status", "sleeping"),
					tfresource.TestCheckResourceAttr(wsName, "state", "sleeping"),
				),
			},
			{
				Config: wsConfig(`  state = "running"` + "\n" + `  wait_for_ready = false`),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(wsName, "status", "waking"),
					tfresource.TestCheckResourceAttr(wsName, "state", "running"),
				),
			},
			{ // refreshed later: running, no diff
				PreConfig: func() { c.Cluster.SetAutoReady(true) },
				Config:    wsConfig(`  state = "running"` + "\n" + `  wait_for_ready = false`),
				PlanOnly:  true,
			},
		},
	})
}

func TestWorkspace_ImportBadID(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{
				Config:        wsConfig(""),
				ResourceName:  wsName,
				ImportState:   true,
				ImportStateId: "Not-An-Id",
				ExpectError:   words("is not a workspace id"),
			},
			{
				Config:        wsConfig(""),
				ResourceName:  wsName,
				ImportState:   true,
				ImportStateId: "zz999999",
				ExpectError:   regexp.MustCompile(`Cannot import non-existent remote object`),
			},
		},
	})
}

// Read and Delete report what happened in diagnostics: called directly, to see the warnings.
func TestWorkspace_Diagnostics(t *testing.T) {
	ctx := context.Background()
	c := newCore(t)
	r := &workspaceResource{}
	r.c = &client{m: c.spy, pollMin: 1, pollMax: 1}
	var sch resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &sch)
	created, err := c.svc.Create(ctx, session.CreateRequest{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	stateOf := func(id string) tfsdk.State {
		st := tfsdk.State{Schema: sch.Schema, Raw: tftypes.NewValue(sch.Schema.Type().TerraformType(ctx), nil)}
		m := workspaceModel{
			ID: types.StringValue(id), UserID: types.StringValue("u"), State: types.StringValue("running"),
			Image: types.StringNull(), Storage: types.StringNull(), CPU: types.StringNull(), Memory: types.StringNull(),
			IdleTimeout: types.StringNull(), BackupOnDelete: types.BoolValue(true), Labels: types.MapNull(types.StringType),
			WaitForReady: types.BoolValue(true), WorkspaceURL: types.StringNull(), Status: types.StringValue("running"),
			CreatedAt: types.StringNull(), Password: types.StringValue("pw"),
			Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{
				"create": types.StringType, "update": types.StringType, "delete": types.StringType})},
		}
		if d := st.Set(ctx, &m); d.HasError() {
			t.Fatal(d)
		}
		return st
	}
	warning := func(d diag.Diagnostics, want string) {
		t.Helper()
		for _, w := range d.Warnings() {
			if strings.Contains(w.Summary()+" "+w.Detail(), want) {
				return
			}
		}
		t.Errorf("no warning containing %q in %v", want, d)
	}

	// delete: the backup location is reported
	del := resource.DeleteResponse{State: stateOf(created.ID)}
	r.Delete(ctx, resource.DeleteRequest{State: stateOf(created.ID)}, &del)
	if del.Diagnostics.HasError() {
		t.Fatal(del.Diagnostics)
	}
	warning(del.Diagnostics, "backed up to pvc://backups/"+created.ID+"/") // where sessiontest's Job zips

	// read of the deleted workspace: removed with a warning
	read := resource.ReadResponse{State: stateOf(created.ID)}
	r.Read(ctx, resource.ReadRequest{State: stateOf(created.ID)}, &read)
	warning(read.Diagnostics, "removed from the state")
	if !read.State.Raw.IsNull() {
		t.Error("a deleted workspace is still in state after Read")
	}

	// read of an unknown one: the same
	read = resource.ReadResponse{State: stateOf("zz000000")}
	r.Read(ctx, resource.ReadRequest{State: stateOf("zz000000")}, &read)
	warning(read.Diagnostics, "was not found")
	if !read.State.Raw.IsNull() || read.Diagnostics.HasError() {
		t.Errorf("unknown workspace: state %v diags %v", read.State.Raw, read.Diagnostics)
	}
}

func TestErrorDiagnostic(t *testing.T) {
	d := errorDiagnostic("Cannot update", session.Invalid("storage", "storage cannot shrink"), workspaceFields())
	if a, ok := d.(diag.DiagnosticWithPath); !ok || a.Path().String() != "storage" {
		t.Errorf("invalid storage: %#v, want an attribute diagnostic on storage", d)
	}
	d = errorDiagnostic("Cannot list", session.Invalid("cursor", "bad"), workspaceFields())
	if _, ok := d.(diag.DiagnosticWithPath); ok || !strings.Contains(d.Detail(), `"cursor"`) {
		t.Errorf("invalid cursor: %#v, want a plain diagnostic naming the field", d)
	}
	d = errorDiagnostic("Cannot delete", &session.Error{Kind: session.KindBackup, Message: "job failed"}, workspaceFields())
	if !strings.Contains(d.Detail(), "volume was kept") {
		t.Errorf("backup: %q", d.Detail())
	}
	if !retryable(session.ErrBusy) || !retryable(session.Unavailable("redis", fmt.Errorf("x"))) || retryable(session.ErrConflict) {
		t.Error("retryable kinds")
	}
}

func TestShortDuration(t *testing.T) {
	for in, want := range map[string]string{"15m": "15m", "1h": "1h", "1h30m": "1h30m", "90s": "1m30s", "0": "0s", "36h": "36h", "1h0m5s": "1h0m5s"} {
		d, _ := session.ParseDuration(in)
		if got := shortDuration(d.D()); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", in, got, want)
		}
	}
}
