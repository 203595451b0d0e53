package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// The deployment's limits come back as diagnostics: a maximum on its attribute, naming the
// limit; a quota naming the limit.
func TestWorkspace_LimitDiagnostics(t *testing.T) {
	needTerraform(t)
	c := newCoreWith(t, session.Options{Limits: session.Limits{MaxStorage: "10Gi", MaxSessionsPerUser: 1}})
	if _, err := c.svc.Create(context.Background(), session.CreateRequest{UserID: "dev@example.com"}); err != nil {
		t.Fatal(err)
	}
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{Config: wsConfig(`  storage = "20Gi"`), ExpectError: words(`storage 20Gi is above this deployment's maximum of 10Gi (max_storage)`)},
			{Config: wsConfig(""), ExpectError: words(`Hyperbola's quota max_sessions_per_user is reached`)},
		},
	})
}

func TestErrorDiagnostic_Limits(t *testing.T) {
	d := errorDiagnostic("Cannot create", &session.Error{Kind: session.KindInvalid, Field: "memory", Limit: session.LimitMaxMemory,
		Message: "memory 32Gi is above this deployment's maximum of 16Gi"}, workspaceFields())
	if a, ok := d.(diag.DiagnosticWithPath); !ok || a.Path().String() != "memory" || !strings.Contains(d.Detail(), "max_memory") {
		t.Errorf("maximum: %#v, want an attribute diagnostic on memory naming max_memory", d)
	}
	d = errorDiagnostic("Cannot wake", session.Quota(session.LimitRunning, "full"), workspaceFields())
	if _, ok := d.(diag.DiagnosticWithPath); ok || !strings.Contains(d.Detail(), "quota max_running is reached") {
		t.Errorf("quota: %#v", d)
	}
	if retryable(session.Quota(session.LimitRunning, "full")) {
		t.Error("a quota is retried")
	}
}

// Direct mode knows the deployment's maximums (its session core reads the same configuration):
// a workspace above them is refused at plan, on its attribute; an update only on what changes.
func TestWorkspace_ModifyPlanChecksMaximumsInDirectMode(t *testing.T) {
	ctx := context.Background()
	c := newCoreWith(t, session.Options{Limits: session.Limits{MaxStorage: "10Gi", MaxMemory: "1Gi"}})
	r := &workspaceResource{}
	r.c = &client{m: directManager{Service: c.svc}, mode: modeDirect, pollMin: 1, pollMax: 1}
	var sch resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &sch)
	model := func(storage, memory string) workspaceModel {
		str := func(v string) types.String {
			if v == "" {
				return types.StringUnknown()
			}
			return types.StringValue(v)
		}
		return workspaceModel{
			ID: types.StringUnknown(), UserID: types.StringValue("u"), State: types.StringValue("running"),
			Image: types.StringUnknown(), Storage: str(storage), CPU: types.StringUnknown(), Memory: str(memory),
			IdleTimeout: types.StringUnknown(), BackupOnDelete: types.BoolValue(true), Labels: types.MapNull(types.StringType),
			WaitForReady: types.BoolValue(true), WorkspaceURL: types.StringUnknown(), Status: types.StringUnknown(),
			CreatedAt: types.StringUnknown(), Password: types.StringUnknown(),
			Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{
				"create": types.StringType, "update": types.StringType, "delete": types.StringType})},
		}
	}
	plan := func(old *workspaceModel, m workspaceModel) diag.Diagnostics {
		t.Helper()
		null := tftypes.NewValue(sch.Schema.Type().TerraformType(ctx), nil)
		req := resource.ModifyPlanRequest{Plan: tfsdk.Plan{Schema: sch.Schema, Raw: null}, State: tfsdk.State{Schema: sch.Schema, Raw: null}}
		if d := req.Plan.Set(ctx, &m); d.HasError() {
			t.Fatal(d)
		}
		if old != nil {
			if d := req.State.Set(ctx, old); d.HasError() {
				t.Fatal(d)
			}
		}
		resp := resource.ModifyPlanResponse{Plan: req.Plan}
		r.ModifyPlan(ctx, req, &resp)
		return resp.Diagnostics
	}
	d := plan(nil, model("20Gi", ""))
	if !d.HasError() || !strings.Contains(d.Errors()[0].Detail(), "max_storage") {
		t.Fatalf("create above max_storage: %v", d)
	}
	if a, ok := d.Errors()[0].(diag.DiagnosticWithPath); !ok || a.Path().String() != "storage" {
		t.Errorf("not on storage: %#v", d.Errors()[0])
	}
	if d := plan(nil, model("10Gi", "")); d.HasError() {
		t.Fatalf("create at the maximum: %v", d)
	}
	old := model("5Gi", "2Gi") // made before max_memory was lowered
	old.ID, old.Image, old.CPU = types.StringValue("ab12cd34"), types.StringValue(session.DefaultImage), types.StringValue("250m")
	upd := old
	upd.Storage = types.StringValue("8Gi")
	if d := plan(&old, upd); d.HasError() {
		t.Fatalf("an update that keeps the memory: %v", d)
	}
	upd.Memory = types.StringValue("3Gi")
	if d := plan(&old, upd); !d.HasError() || !strings.Contains(d.Errors()[0].Detail(), "max_memory") {
		t.Fatalf("an update above max_memory: %v", d)
	}
	// endpoint mode does not know the limits: nothing at plan
	r.c = &client{m: c.spy, pollMin: 1, pollMax: 1}
	if d := plan(nil, model("20Gi", "")); d.HasError() {
		t.Fatalf("endpoint mode: %v", d)
	}
}
