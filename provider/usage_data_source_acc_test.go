package provider

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Acceptance tests of hyperbola_usage in both modes, on the local cluster, redis-server and
// the Firestore emulator. With accOptions.firestore the test's session core, the API
// (endpoint mode) and the provider's own session core (direct mode, firestore_project) record
// every transition into the test's Firestore project, which the usage report reads.

// eachModeWith runs fn as a subtest per provider mode, in environments made with o.
func eachModeWith(t *testing.T, o accOptions, fn func(t *testing.T, a *acc)) {
	for _, m := range accModes {
		t.Run(string(m), func(t *testing.T) { fn(t, newAccWith(t, m, o)) })
	}
}

const usageName = "data.hyperbola_usage.mine"

// A workspace made by Terraform and put to sleep by Terraform shows in its user's report: the
// transitions were recorded (in direct mode by the provider itself), the running time before
// the sleep and the sleeping time after it are counted, the user filter leaves out another
// user's workspace, and a window before any of it is empty.
func TestAccUsageDataSource_SleptWorkspace(t *testing.T) {
	eachModeWith(t, accOptions{firestore: true}, func(t *testing.T, a *acc) {
		// made outside Terraform, by another user: in the unfiltered report only
		if _, err := a.svc.Create(context.Background(), session.CreateRequest{UserID: "someone@example.com"}); err != nil {
			t.Fatal(err)
		}
		var id string
		usage := `
data "hyperbola_usage" "mine" {
  user_id    = "acc@example.com"
  from       = timeadd(plantimestamp(), "-1h")
  depends_on = [hyperbola_workspace.w]
}
data "hyperbola_usage" "all" {
  from       = timeadd(plantimestamp(), "-1h")
  depends_on = [hyperbola_workspace.w]
}
data "hyperbola_usage" "before" {
  user_id = "acc@example.com"
  from    = "2020-01-01T00:00:00Z"
  to      = "2020-02-01T00:00:00Z"
}
`
		tfresource.Test(t, tfresource.TestCase{
			ProtoV6ProviderFactories: a.factories,
			Steps: []tfresource.TestStep{
				{Config: a.config(""), Check: captureID(wsName, &id)},
				{
					Config: a.config(`  state = "sleeping"`) + usage,
					Check: tfresource.ComposeAggregateTestCheckFunc(
						a.status(&id, session.StateSleeping),
						// the actor is terraform in both modes (through the API: X-Hyperbola-Actor)
						a.lastEvent(&id, session.StateSleeping, "terraform"),
						tfresource.TestCheckResourceAttr(usageName, "sessions.#", "1"),
						tfresource.TestCheckResourceAttrPair(usageName, "sessions.0.id", wsName, "id"),
						tfresource.TestCheckResourceAttr(usageName, "sessions.0.user_id", "acc@example.com"),
						tfresource.TestCheckResourceAttr(usageName, "sessions.0.status", "sleeping"),
						tfresource.TestCheckResourceAttrPair(usageName, "sessions.0.created_at", wsName, "created_at"),
						tfresource.TestCheckNoResourceAttr(usageName, "sessions.0.deleted_at"),
						positive(usageName, "sessions.0.running_hours"),
						positive(usageName, "sessions.0.sleeping_hours"),
						tfresource.TestCheckResourceAttr(usageName, "sessions.0.stopped_hours", "0"),
						positive(usageName, "total.running_hours"),
						positive(usageName, "total.sleeping_hours"),
						positive(usageName, "total.estimated_cost"),
						positive(usageName, "total.always_on_cost"),
						positive(usageName, "total.savings_percent"),
						tfresource.TestCheckResourceAttr(usageName, "users.#", "1"),
						tfresource.TestCheckResourceAttr(usageName, "users.0.user_id", "acc@example.com"),
						tfresource.TestCheckResourceAttr(usageName, "users.0.sessions", "1"),
						tfresource.TestCheckResourceAttr(usageName, "currency", "USD"),
						tfresource.TestCheckResourceAttr(usageName, "price_per_running_hour", floatString(config.DefaultPricePerHour)),
						tfresource.TestCheckResourceAttr(usageName, "pending_events", "0"),
						tfresource.TestCheckResourceAttrSet(usageName, "generated_at"),

						tfresource.TestCheckResourceAttr("data.hyperbola_usage.all", "users.#", "2"),
						tfresource.TestCheckResourceAttr("data.hyperbola_usage.all", "users.0.user_id", "acc@example.com"),
						tfresource.TestCheckResourceAttr("data.hyperbola_usage.all", "users.1.user_id", "someone@example.com"),
						tfresource.TestCheckResourceAttr("data.hyperbola_usage.all", "sessions.#", "2"),

						tfresource.TestCheckResourceAttr("data.hyperbola_usage.before", "sessions.#", "0"),
						tfresource.TestCheckResourceAttr("data.hyperbola_usage.before", "users.#", "0"),
						tfresource.TestCheckResourceAttr("data.hyperbola_usage.before", "total.running_hours", "0"),
					),
				},
			},
			CheckDestroy: a.deletedWithBackup(&id),
		})
	})
}

// A deployment without durable records has no usage report, and says so: direct mode without
// firestore_project, and an API without Firestore (its 501).
func TestAccUsageDataSource_NoFirestore(t *testing.T) {
	eachMode(t, func(t *testing.T, a *acc) {
		want := map[mode]string{
			modeDirect:   "does not provide this (it was set up without the part it needs): the usage report needs durable records, and direct mode keeps them only with a Firestore project: set `firestore_project`",
			modeEndpoint: "does not provide this (it was set up without the part it needs): the usage report needs durable records: set GOOGLE_CLOUD_PROJECT",
		}[a.mode]
		tfresource.Test(t, tfresource.TestCase{
			ProtoV6ProviderFactories: a.factories,
			Steps: []tfresource.TestStep{{
				Config:      a.provider + "data \"hyperbola_usage\" \"all\" {\n  from = timeadd(plantimestamp(), \"-24h\")\n}\n",
				ExpectError: diagError("Cannot read the usage report", want),
			}},
		})
	})
}

// A bad window fails at plan, naming the attribute: from not before to, a window longer than
// 93 days, a time that is not RFC 3339, and a from in the future (checked against the clock
// at plan, plantimestamp() included).
func TestAccUsageDataSource_BadWindow(t *testing.T) {
	eachModeWith(t, accOptions{firestore: true}, func(t *testing.T, a *acc) {
		ds := func(body string) string { return a.provider + "data \"hyperbola_usage\" \"u\" {\n" + body + "}\n" }
		tfresource.Test(t, tfresource.TestCase{
			ProtoV6ProviderFactories: a.factories,
			Steps: []tfresource.TestStep{
				{
					Config:      ds("  from = \"2026-02-01T00:00:00Z\"\n  to   = \"2026-01-01T00:00:00Z\"\n"),
					PlanOnly:    true,
					ExpectError: attrError("Invalid usage window", "from", "from (2026-02-01T00:00:00Z) must be before to (2026-01-01T00:00:00Z)"),
				},
				{
					Config:      ds("  from = \"2026-01-01T00:00:00Z\"\n  to   = \"2026-06-01T00:00:00Z\"\n"),
					PlanOnly:    true,
					ExpectError: attrError("Invalid usage window", "to", "is longer than 93 days"),
				},
				{
					Config:      ds("  from = \"2026-01-01 00:00\"\n"),
					PlanOnly:    true,
					ExpectError: attrError("Invalid from", "from", `from "2026-01-01 00:00" is not an RFC 3339 time`),
				},
				{
					Config:      ds("  from = \"2026-01-01T00:00:00Z\"\n  to   = \"last tuesday\"\n"),
					PlanOnly:    true,
					ExpectError: attrError("Invalid to", "to", `to "last tuesday" is not an RFC 3339 time`),
				},
				{
					Config:      ds("  from = timeadd(plantimestamp(), \"24h\")\n"),
					PlanOnly:    true,
					ExpectError: attrError("Invalid usage window", "from", "must be before to"),
				},
			},
		})
	})
}

// lastEvent checks the last event recorded in Firestore for workspace *id: the state it led
// to and who made it.
func (a *acc) lastEvent(id *string, to session.State, actor string) tfresource.TestCheckFunc {
	return func(*terraform.State) error {
		evs, err := a.events.Events(context.Background(), *id)
		if err != nil {
			return fmt.Errorf("events of %s: %w", *id, err)
		}
		if len(evs) == 0 {
			return fmt.Errorf("no event recorded for %s", *id)
		}
		last := evs[len(evs)-1]
		if last.To != to || last.Actor != actor {
			return fmt.Errorf("last event of %s: %s to %s by %q, want to %s by %q", *id, last.Type, last.To, last.Actor, to, actor)
		}
		return nil
	}
}

// positive checks that a numeric attribute is above 0.
func positive(name, key string) tfresource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[name]
		if !ok {
			return fmt.Errorf("%s not in state", name)
		}
		v, ok := rs.Primary.Attributes[key]
		if !ok {
			return fmt.Errorf("%s: no %s", name, key)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%s: %s = %q is not a number: %w", name, key, v, err)
		}
		if f <= 0 {
			return fmt.Errorf("%s: %s = %s, want > 0", name, key, v)
		}
		return nil
	}
}
