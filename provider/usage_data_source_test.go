package provider

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"

	apiclient "github.com/hyperbola-in/terraform-provider-hyperbola/internal/client"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// usageManager is a Manager with a usage report: it answers rep (or err) and keeps the
// queries it was asked.
type usageManager struct {
	session.Manager
	mu      sync.Mutex
	rep     *events.UsageReport
	err     error
	queries []events.UsageQuery
}

func (u *usageManager) Usage(_ context.Context, q events.UsageQuery) (*events.UsageReport, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.queries = append(u.queries, q)
	if u.err != nil {
		return nil, u.err
	}
	return u.rep, nil
}

func (u *usageManager) asked() []events.UsageQuery {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]events.UsageQuery(nil), u.queries...)
}

// sampleReport is a report of two users, one with a deleted workspace, priced.
func sampleReport() *events.UsageReport {
	created := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	prices := events.Prices{PerRunningHour: 0.5, PerGBMonth: 0.1, Currency: "EUR"}
	tl := []events.Timeline{
		{SessionID: "ab12cd34", UserID: "ada@example.com", CreatedAt: created, Points: []events.Point{
			{At: created, State: session.StateCreating, Storage: "1Gi"},
			{At: created.Add(time.Minute), Seq: 1, State: session.StateRunning, Storage: "1Gi"},
			{At: created.Add(3 * time.Hour), Seq: 2, State: session.StateSleeping, Storage: "1Gi", SleptBy: session.SleepConnectedCap},
		}},
		{SessionID: "ef56gh78", UserID: "ada@example.com", CreatedAt: created.Add(time.Hour), DeletedAt: created.Add(5 * time.Hour), Points: []events.Point{
			{At: created.Add(time.Hour), State: session.StateRunning, Storage: "2Gi"},
			{At: created.Add(4 * time.Hour), Seq: 1, State: session.StateDeleting, Storage: "2Gi"},
			{At: created.Add(5 * time.Hour), Seq: 2, State: session.StateDeleted, Storage: "2Gi"},
		}},
		{SessionID: "ij90kl12", UserID: "bob@example.com", CreatedAt: created, Points: []events.Point{
			{At: created, State: session.StateRunning, Storage: "1Gi"},
		}},
	}
	rep := events.BuildReport(tl, time.Time{}, created.Add(10*time.Hour), prices)
	rep.GeneratedAt = created.Add(10 * time.Hour)
	rep.PendingEvents = 2
	return rep
}

// The report's every figure lands in the state; the filters reach the reporter as times; bad
// windows fail at plan without a call; the reporter's errors go through errorDiagnostic.
func TestUsageDataSource(t *testing.T) {
	needTerraform(t)
	rep := sampleReport()
	u := &usageManager{Manager: newCore(t).spy, rep: rep}
	const ds = "data.hyperbola_usage.u"
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(u),
		Steps: []tfresource.TestStep{
			{
				Config: fakeProviderBlock + `
data "hyperbola_usage" "u" {
  from = "2026-03-02T00:00:00Z"
  to   = "2026-03-01T00:00:00Z"
}`,
				PlanOnly:    true,
				ExpectError: attrError("Invalid usage window", "from", "from (2026-03-02T00:00:00Z) must be before to (2026-03-01T00:00:00Z)"),
			},
			{
				Config: fakeProviderBlock + `
data "hyperbola_usage" "u" {
  from = "2026-03-01T00:00:00Z"
  to   = "2026-03-01T00:00:00Z"
}`,
				PlanOnly:    true,
				ExpectError: attrError("Invalid usage window", "from", "must be before to"),
			},
			{
				Config: fakeProviderBlock + `
data "hyperbola_usage" "u" {
  from = "2026-01-01T00:00:00Z"
  to   = "2026-06-01T00:00:00Z"
}`,
				PlanOnly:    true,
				ExpectError: attrError("Invalid usage window", "to", "is longer than 93 days"),
			},
			{
				Config:      fakeProviderBlock + `data "hyperbola_usage" "u" {}`,
				PlanOnly:    true,
				ExpectError: words(`The argument "from" is required`),
			},
			{
				Config: fakeProviderBlock + `
data "hyperbola_usage" "u" {
  from = "yesterday"
}`,
				PlanOnly:    true,
				ExpectError: attrError("Invalid from", "from", `from "yesterday" is not an RFC 3339 time`),
			},
			{
				Config: fakeProviderBlock + `
data "hyperbola_usage" "u" {
  from = "2026-02-01T00:00:00Z"
  to   = "2026-03-01"
}`,
				PlanOnly:    true,
				ExpectError: attrError("Invalid to", "to", `to "2026-03-01" is not an RFC 3339 time`),
			},
			{
				Config: fakeProviderBlock + `
data "hyperbola_usage" "u" {
  user_id = ""
  from    = "2026-02-01T00:00:00Z"
  to      = "2026-03-01T00:00:00Z"
}`,
				PlanOnly:    true,
				ExpectError: attrError("Invalid user id", "user_id", "user_id is required"),
			},
			{
				Config: fakeProviderBlock + `
data "hyperbola_usage" "u" {
  user_id = "ada@example.com"
  from    = "2026-03-01T09:00:00+01:00"
  to      = "2026-03-01T18:00:00Z"
}`,
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(ds, "user_id", "ada@example.com"),
					tfresource.TestCheckResourceAttr(ds, "from", "2026-03-01T09:00:00+01:00"),
					tfresource.TestCheckResourceAttr(ds, "generated_at", "2026-03-01T18:00:00Z"),
					tfresource.TestCheckResourceAttr(ds, "currency", "EUR"),
					tfresource.TestCheckResourceAttr(ds, "price_per_running_hour", "0.5"),
					tfresource.TestCheckResourceAttr(ds, "storage_price_per_gb_month", "0.1"),
					tfresource.TestCheckResourceAttr(ds, "pending_events", "2"),
					// total: ada 3h + 3h running, 7h sleeping, 1h deleting; bob 10h running
					tfresource.TestCheckResourceAttr(ds, "total.running_hours", floatString(rep.Total.RunningHours)),
					tfresource.TestCheckResourceAttr(ds, "total.sleeping_hours", "7"),
					tfresource.TestCheckResourceAttr(ds, "total.stopped_hours", "1"),
					tfresource.TestCheckResourceAttr(ds, "total.lifetime_hours", floatString(rep.Total.LifetimeHours)),
					tfresource.TestCheckResourceAttr(ds, "total.storage_gb_months", floatString(rep.Total.StorageGBMonths)),
					tfresource.TestCheckResourceAttr(ds, "total.compute_cost", floatString(rep.Total.ComputeCost)),
					tfresource.TestCheckResourceAttr(ds, "total.storage_cost", floatString(rep.Total.StorageCost)),
					tfresource.TestCheckResourceAttr(ds, "total.estimated_cost", floatString(rep.Total.Cost)),
					tfresource.TestCheckResourceAttr(ds, "total.always_on_cost", floatString(rep.Total.AlwaysOnCost)),
					tfresource.TestCheckResourceAttr(ds, "total.savings_percent", floatString(rep.Total.SavingsPercent)),
					// ada's first session slept for the connected cap at 3h: 7h asleep since
					tfresource.TestCheckResourceAttr(ds, "total.slept_by_cap", "1"),
					tfresource.TestCheckResourceAttr(ds, "total.saved_hours", "7"),
					tfresource.TestCheckResourceAttr(ds, "users.0.saved_hours", "7"),
					tfresource.TestCheckResourceAttr(ds, "users.1.saved_hours", "0"),
					tfresource.TestCheckResourceAttr(ds, "sessions.0.slept_by_cap", "1"),
					tfresource.TestCheckResourceAttr(ds, "users.#", "2"),
					tfresource.TestCheckResourceAttr(ds, "users.0.user_id", "ada@example.com"),
					tfresource.TestCheckResourceAttr(ds, "users.0.sessions", "2"),
					tfresource.TestCheckResourceAttr(ds, "users.0.stopped_hours", "1"),
					tfresource.TestCheckResourceAttr(ds, "users.1.user_id", "bob@example.com"),
					tfresource.TestCheckResourceAttr(ds, "users.1.running_hours", "10"),
					tfresource.TestCheckResourceAttr(ds, "users.1.estimated_cost", floatString(rep.Users[1].Cost)),
					tfresource.TestCheckResourceAttr(ds, "sessions.#", "3"),
					tfresource.TestCheckResourceAttr(ds, "sessions.0.id", "ab12cd34"),
					tfresource.TestCheckResourceAttr(ds, "sessions.0.status", "sleeping"),
					tfresource.TestCheckResourceAttr(ds, "sessions.0.created_at", "2026-03-01T08:00:00Z"),
					tfresource.TestCheckNoResourceAttr(ds, "sessions.0.deleted_at"),
					tfresource.TestCheckResourceAttr(ds, "sessions.0.sleeping_hours", "7"),
					tfresource.TestCheckResourceAttr(ds, "sessions.1.id", "ef56gh78"),
					tfresource.TestCheckResourceAttr(ds, "sessions.1.status", "deleted"),
					tfresource.TestCheckResourceAttr(ds, "sessions.1.deleted_at", "2026-03-01T13:00:00Z"),
					tfresource.TestCheckResourceAttr(ds, "sessions.1.running_hours", "3"),
					tfresource.TestCheckResourceAttr(ds, "sessions.1.stopped_hours", "1"),
					tfresource.TestCheckResourceAttr(ds, "sessions.2.user_id", "bob@example.com"),
					tfresource.TestCheckResourceAttr(ds, "sessions.2.status", "running"),
					tfresource.TestCheckResourceAttr(ds, "sessions.2.savings_percent", "0"),
				),
			},
		},
	})
	qs := u.asked()
	if len(qs) == 0 {
		t.Fatal("the reporter was never asked")
	}
	want := events.UsageQuery{UserID: "ada@example.com",
		From: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 1, 18, 0, 0, 0, time.UTC)}
	for _, q := range qs {
		if q.UserID != want.UserID || !q.From.Equal(want.From) || !q.To.Equal(want.To) {
			t.Errorf("query %+v, want %+v", q, want)
		}
	}
}

// No user and no end: everyone's usage over the last day, until now; an empty report gives
// empty lists and a zero total.
func TestUsageDataSource_EmptyReport(t *testing.T) {
	needTerraform(t)
	rep := events.BuildReport(nil, time.Time{}, time.Now(), events.Prices{PerRunningHour: 0.0123, Currency: "USD"})
	u := &usageManager{Manager: newCore(t).spy, rep: rep}
	const ds = "data.hyperbola_usage.all"
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(u),
		Steps: []tfresource.TestStep{{
			Config: fakeProviderBlock + `data "hyperbola_usage" "all" {
  from = timeadd(plantimestamp(), "-24h")
}`,
			Check: tfresource.ComposeAggregateTestCheckFunc(
				tfresource.TestCheckNoResourceAttr(ds, "user_id"),
				tfresource.TestCheckResourceAttr(ds, "users.#", "0"),
				tfresource.TestCheckResourceAttr(ds, "sessions.#", "0"),
				tfresource.TestCheckResourceAttr(ds, "total.running_hours", "0"),
				tfresource.TestCheckResourceAttr(ds, "total.savings_percent", "0"),
				tfresource.TestCheckResourceAttr(ds, "price_per_running_hour", "0.0123"),
			),
		}},
	})
	for _, q := range u.asked() {
		if q.UserID != "" || q.From.IsZero() || !q.To.IsZero() {
			t.Errorf("query %+v, want everyone's from a day ago until now", q)
		}
	}
}

// The reporter's errors: an invalid argument names the attribute, a deployment without the
// report says so (the API's 501 and a Manager that has none), and neither is retried.
func TestUsageDataSource_Errors(t *testing.T) {
	needTerraform(t)
	unimplemented := &session.Error{Kind: session.KindInternal,
		Message: "the usage report needs durable records: set GOOGLE_CLOUD_PROJECT (Firestore) on the control plane",
		Err:     &apiclient.APIError{Status: 501, Code: "unimplemented"}}
	for _, tc := range []struct {
		name  string
		m     session.Manager
		want  *regexp.Regexp
		calls int // reporter calls (retries show as more)
	}{
		{name: "invalid from", m: &usageManager{Manager: newCore(t).spy, err: session.Invalid("from", "from (2030-01-01T00:00:00Z) must be before to (2026-03-01T00:00:00Z)")},
			want: attrError("Cannot read the usage report", "from", "Hyperbola rejected the value: from (2030-01-01T00:00:00Z) must be before to"), calls: 1},
		{name: "api 501", m: &usageManager{Manager: newCore(t).spy, err: unimplemented},
			want: words("does not provide this (it was set up without the part it needs): the usage report needs durable records: set GOOGLE_CLOUD_PROJECT"), calls: 1},
		{name: "no reporter", m: newCore(t).spy, want: words("does not provide this")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tfresource.UnitTest(t, tfresource.TestCase{
				ProtoV6ProviderFactories: fakeFactories(tc.m),
				Steps: []tfresource.TestStep{{
					Config:      fakeProviderBlock + "data \"hyperbola_usage\" \"u\" {\n  from = timeadd(plantimestamp(), \"-24h\")\n}\n",
					ExpectError: tc.want,
				}},
			})
			if u, ok := tc.m.(*usageManager); ok && len(u.asked()) != tc.calls {
				t.Errorf("reporter called %d times, want %d (not retried)", len(u.asked()), tc.calls)
			}
		})
	}
}

// errorDiagnostic: the usage report's errors of both modes.
func TestErrorDiagnostic_Usage(t *testing.T) {
	fields := fieldPaths{"user_id": path.Root("user_id"), "from": path.Root("from"), "to": path.Root("to")}
	_, err := directManager{}.Usage(context.Background(), events.UsageQuery{})
	if !isUnimplemented(err) {
		t.Fatalf("direct mode without Firestore: %v, want an unimplemented error", err)
	}
	d := errorDiagnostic("Cannot read the usage report", err, fields)
	if d.Severity() != diag.SeverityError || !strings.Contains(d.Detail(), "`firestore_project`") || !strings.Contains(d.Detail(), "does not provide this") {
		t.Errorf("direct mode without Firestore: %q", d.Detail())
	}
	api := &session.Error{Kind: session.KindInternal, Message: "needs Firestore", Err: &apiclient.APIError{Status: 501, Code: "unimplemented"}}
	if d := errorDiagnostic("x", api, fields); !strings.Contains(d.Detail(), "does not provide this") {
		t.Errorf("API 501: %q", d.Detail())
	}
	if retryable(err) || retryable(api) {
		t.Error("a missing part is retried")
	}
	d = errorDiagnostic("x", session.Invalid("to", "bad"), fields)
	dp, ok := d.(diag.DiagnosticWithPath)
	if !ok || !dp.Path().Equal(path.Root("to")) {
		t.Errorf("invalid to: diagnostic %v not at to", d)
	}
}

// attrError matches Terraform's rendering of an error diagnostic with summary, attached to
// attribute attr (terraform quotes the attribute's line), whose detail has the words of detail.
func attrError(summary, attr, detail string) *regexp.Regexp {
	return regexp.MustCompile(`Error: ` + words(summary).String() + `\s+with [^\n]+,\s+on [^\n]+:\s+\d+:\s+` +
		regexp.QuoteMeta(attr) + `\s+=[^\n]*\n[\s\S]*` + words(detail).String())
}

// diagError matches Terraform's rendering of an error diagnostic with summary whose detail
// has the words of detail.
func diagError(summary, detail string) *regexp.Regexp {
	return regexp.MustCompile(`Error: ` + words(summary).String() + `\s[\s\S]*` + words(detail).String())
}

// floatString is a number as the test state shows it.
func floatString(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// A window computed in the configuration (unknown at validation, known at plan) is read as
// the time it becomes: the last 30 days.
func TestUsageDataSource_ComputedWindow(t *testing.T) {
	needTerraform(t)
	u := &usageManager{Manager: newCore(t).spy, rep: sampleReport()}
	before := time.Now()
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(u),
		Steps: []tfresource.TestStep{{
			Config: fakeProviderBlock + `
data "hyperbola_usage" "recent" {
  from = timeadd(plantimestamp(), "-720h")
}`,
			Check: tfresource.TestCheckResourceAttr("data.hyperbola_usage.recent", "sessions.#", "3"),
		}},
	})
	qs := u.asked()
	if len(qs) == 0 {
		t.Fatal("the reporter was never asked")
	}
	for _, q := range qs {
		want := before.Add(-720 * time.Hour)
		if d := q.From.Sub(want); d < -time.Second || d > time.Minute || !q.To.IsZero() {
			t.Errorf("query %+v, want from ≈ %s and no to", q, want.UTC().Format(time.RFC3339))
		}
	}
}
