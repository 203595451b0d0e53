package provider

import (
	"context"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// storageNoShrink refuses, at plan, a storage value smaller than the current one: a volume
// only grows, and replacing the workspace instead would lose its files. Growth is planned as
// an in-place update (the StorageClass must allow volume expansion).
type storageNoShrink struct{}

func (storageNoShrink) Description(context.Context) string {
	return "storage can grow in place; shrinking it is refused at plan (files would be lost)"
}
func (m storageNoShrink) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (storageNoShrink) PlanModifyString(_ context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.StateValue.IsNull() || req.StateValue.IsUnknown() || req.PlanValue.IsNull() || req.PlanValue.IsUnknown() {
		return
	}
	was, err := session.ParseQuantity("storage", req.StateValue.ValueString())
	if err != nil {
		return
	}
	want, err := session.ParseQuantity("storage", req.PlanValue.ValueString())
	if err != nil {
		return // the validator reports it
	}
	if want.Cmp(was) < 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "Storage cannot shrink",
			"The workspace's volume is "+req.StateValue.ValueString()+"; it cannot shrink to "+req.PlanValue.ValueString()+
				": a volume only grows, and replacing the workspace would lose its files. Keep the current size or grow it. "+
				"To start over with a smaller volume, destroy the workspace first (its files are backed up when backup_on_delete is true).")
	}
}

// statusPlan keeps the prior status when nothing planned can change it: the workspace is
// settled (running or sleeping) and its state is not changing. Otherwise the status is
// unknown until apply.
type statusPlan struct{}

func (statusPlan) Description(context.Context) string {
	return "the status is known at plan unless the state changes or the workspace is between states"
}
func (m statusPlan) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (statusPlan) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.StateValue.IsNull() || !req.PlanValue.IsUnknown() {
		return
	}
	prior := session.State(req.StateValue.ValueString())
	if prior != session.StateRunning && prior != session.StateSleeping {
		return
	}
	var planState, priorState types.String
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("state"), &planState)...)
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("state"), &priorState)...)
	if resp.Diagnostics.HasError() || planState.IsUnknown() || !planState.Equal(priorState) || string(prior) != priorState.ValueString() {
		return
	}
	resp.PlanValue = req.StateValue
}

// restoreFromReplace decides when a change of restore_from replaces the workspace: when it
// names another archive. Removing it, or naming the archive the workspace was restored from
// another way (its location, its backup id or its session's id: what `restored_from` reports),
// changes nothing but the state, so an imported workspace (restore_from null) can take the
// configuration that made it without being replaced.
func restoreFromReplace(ctx context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
	if req.PlanValue.IsNull() || req.PlanValue.IsUnknown() {
		resp.RequiresReplace = !req.PlanValue.IsNull() // unknown: it may name another archive
		return
	}
	var restored types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("restored_from"), &restored)...)
	resp.RequiresReplace = !refersTo(req.PlanValue.ValueString(), restored.ValueString())
}

// refersTo reports whether ref (a restore_from value) names the archive at location.
func refersTo(ref, location string) bool {
	ref = strings.TrimSpace(ref)
	id := session.BackupIDOf(location)
	if ref == "" || id == "" {
		return false
	}
	sid, _, _ := strings.Cut(id, "-")
	return ref == location || ref == id || ref == sid
}

// restoredAtPlan keeps restored_at once it is known. A workspace that was not restored never
// gets one (null stays null); one whose restore is under way gets it at the next apply.
type restoredAtPlan struct{}

func (restoredAtPlan) Description(context.Context) string {
	return "restored_at is kept once set; null for a workspace that was not restored"
}
func (m restoredAtPlan) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (restoredAtPlan) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.State.Raw.IsNull() || !req.PlanValue.IsUnknown() {
		return
	}
	if !req.StateValue.IsNull() {
		resp.PlanValue = req.StateValue
		return
	}
	var restored types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("restored_from"), &restored)...)
	if !resp.Diagnostics.HasError() && restored.IsNull() {
		resp.PlanValue = types.StringNull()
	}
}
