package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// limitChecker is a Manager that knows the deployment's maximums: the session core of direct
// mode, which reads the same configuration as the deployed API. Endpoint mode does not know
// them; the API's answer at apply is the diagnostic there.
type limitChecker interface {
	CheckMaximums(old *session.Session, image, cpu, memory, storage string) error
}

// ModifyPlan checks the planned image, cpu, memory and storage against the deployment's
// maximums and image allowlist at plan, in direct mode, as the apply would. Counts (quotas)
// are left to the apply: they change between plan and apply.
func (r *workspaceResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.c == nil || r.c.mode != modeDirect {
		return
	}
	lc, ok := r.c.m.(limitChecker)
	if !ok {
		return
	}
	var plan workspaceModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...); resp.Diagnostics.HasError() {
		return
	}
	known := func(v types.String) string {
		if v.IsNull() || v.IsUnknown() {
			return ""
		}
		return v.ValueString()
	}
	var old *session.Session
	if !req.State.Raw.IsNull() {
		var st workspaceModel
		if resp.Diagnostics.Append(req.State.Get(ctx, &st)...); resp.Diagnostics.HasError() {
			return
		}
		old = &session.Session{Image: known(st.Image), CPU: known(st.CPU), Memory: known(st.Memory), Storage: known(st.Storage)}
	}
	if err := lc.CheckMaximums(old, known(plan.Image), known(plan.CPU), known(plan.Memory), known(plan.Storage)); err != nil {
		resp.Diagnostics.Append(errorDiagnostic("Hyperbola's limits refuse this workspace", err, workspaceFields()))
	}
}
