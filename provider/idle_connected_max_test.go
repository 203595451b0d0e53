package provider

import (
	"fmt"
	"testing"
	"time"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// idle_connected_max: unset it reads the deployment's default back (raised to a longer
// idle_timeout); set, it is sent on create and changed in place; 0 removes the cap; the data
// source reads it.
func TestWorkspace_IdleConnectedMax(t *testing.T) {
	needTerraform(t)
	c := newCoreWith(t, session.Options{IdleConnectedMax: session.DefaultIdleConnectedMax})
	var id string
	capIs := func(want time.Duration) tfresource.TestCheckFunc {
		return func(*terraform.State) error {
			s, err := c.session(id)
			if err != nil {
				return err
			}
			if s.IdleConnectedMax.D() != want {
				return fmt.Errorf("the workspace's idle_connected_max is %s, want %s", s.IdleConnectedMax, want)
			}
			return nil
		}
	}
	update := tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate)}}
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{
				Config: wsConfig(``),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					captureID(wsName, &id),
					tfresource.TestCheckResourceAttr(wsName, "idle_connected_max", "2h"),
					capIs(2*time.Hour),
				),
			},
			{
				Config:           wsConfig(`  idle_connected_max = "4h"`),
				ConfigPlanChecks: update,
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(wsName, "idle_connected_max", "4h"),
					capIs(4*time.Hour),
				),
			},
			{
				ResourceName:      wsName,
				ImportState:       true,
				ImportStateVerify: true, ImportStateVerifyIgnore: []string{"password"},
			},
			{
				Config: wsConfig(`  idle_connected_max = "0"`),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(wsName, "idle_connected_max", "0"),
					capIs(0),
				),
			},
			{
				// raising idle_timeout past the cap needs the cap raised: the core's 400, on the attribute
				Config: wsConfig(`
  idle_connected_max = "1h"
  idle_timeout       = "30m"`),
				Check: capIs(time.Hour),
			},
			{
				Config:      wsConfig(`  idle_timeout = "3h"`),
				ExpectError: words(`idle_connected_max (1h0m0s) must be 0 (no cap) or at least idle_timeout (3h0m0s)`),
			},
			{
				Config: fakeProviderBlock + `
resource "hyperbola_workspace" "w" {
  user_id            = "dev@example.com"
  idle_connected_max = "1h"
  idle_timeout       = "30m"
}
data "hyperbola_workspace" "one" {
  id = hyperbola_workspace.w.id
}`,
				Check: tfresource.TestCheckResourceAttr("data.hyperbola_workspace.one", "idle_connected_max", "1h"),
			},
		},
	})
}

// A new workspace asking for a long idle_timeout and no cap gets the idle_timeout as its cap.
func TestWorkspace_IdleConnectedMaxFollowsALongIdleTimeout(t *testing.T) {
	needTerraform(t)
	c := newCoreWith(t, session.Options{IdleConnectedMax: session.DefaultIdleConnectedMax})
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{{
			Config: wsConfig(`  idle_timeout = "3h"`),
			Check:  tfresource.TestCheckResourceAttr(wsName, "idle_connected_max", "3h"),
		}},
	})
}

// Bad values fail at plan, naming the attribute, and never reach the Manager.
func TestWorkspace_IdleConnectedMaxPlanTimeValidation(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	var steps []tfresource.TestStep
	for _, b := range []struct{ attrs, want string }{
		{`idle_connected_max = "-1h"`, `idle_connected_max: duration "-1h" must not be negative`},
		{`idle_connected_max = "later"`, `idle_connected_max: duration "later": use a form such as`},
		{`idle_connected_max = "30s"`, `idle_connected_max must be at least 1m`},
		{"idle_connected_max = \"30m\"\n  idle_timeout = \"1h\"", `idle_connected_max (30m0s) must be 0 (no cap) or at least idle_timeout (1h0m0s)`},
	} {
		steps = append(steps, tfresource.TestStep{Config: wsConfig("  " + b.attrs), PlanOnly: true, ExpectError: words(b.want)})
	}
	tfresource.UnitTest(t, tfresource.TestCase{ProtoV6ProviderFactories: fakeFactories(c.spy), Steps: steps})
	if n := c.calls(""); n != 0 {
		t.Errorf("the Manager was called %d times (%v), want none", n, c.spy.Calls(""))
	}
}
