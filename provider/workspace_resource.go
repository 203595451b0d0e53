package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Default operation timeouts; the timeouts block overrides them.
const (
	defaultCreateTimeout = 10 * time.Minute
	defaultUpdateTimeout = 10 * time.Minute
	defaultDeleteTimeout = 20 * time.Minute // a backup Job copies the whole volume
	readTimeout          = 2 * time.Minute
)

type workspaceResource struct{ configuredResource }

var (
	_ resource.Resource                   = (*workspaceResource)(nil)
	_ resource.ResourceWithConfigure      = (*workspaceResource)(nil)
	_ resource.ResourceWithImportState    = (*workspaceResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*workspaceResource)(nil)
	_ resource.ResourceWithValidateConfig = (*workspaceResource)(nil)
)

func newWorkspaceResource() resource.Resource { return &workspaceResource{} }

func (r *workspaceResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_workspace"
}

func (r *workspaceResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := func() []planmodifier.String {
		return []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A browser VS Code workspace: a code-server Deployment with its own volume, Service, Ingress, " +
			"NetworkPolicy and password Secret, served at `workspace_url`.\n\n" +
			"A running workspace that stays idle longer than `idle_timeout` is put to sleep by Hyperbola's idle sweep " +
			"(scaled to zero; its files stay), and so is one whose browser tab is left open without use for `idle_connected_max`. That shows up as a change only when the configuration pins `state = \"running\"`; " +
			"the next apply then wakes it. Destroying a workspace backs its volume up first (unless `backup_on_delete = false`) " +
			"and reports where the backup went.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The workspace's id: 8 characters of `[a-z0-9]`, starting with a letter.",
				PlanModifiers:       keep(),
			},
			"user_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Who the workspace belongs to (an e-mail address or any id of at most 254 bytes). Changing it replaces the workspace.",
				Validators:          []validator.String{userIDValidator()},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"state": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "`running` or `sleeping`. Changing it wakes or sleeps the workspace in place. " +
					"Unset, the workspace starts running and Terraform follows whatever it becomes (the idle sweep may put it to sleep) without planning a change. " +
					"It reads back `failed` when the workspace failed (see `status`): an apply that sets `state` then repairs it.",
				Validators: []validator.String{
					stringvalidator.OneOf(string(session.StateRunning), string(session.StateSleeping)),
				},
				PlanModifiers: keep(),
			},
			"image": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				MarkdownDescription: "Container image of the workspace (code-server). Default: the provider's `default_image` (direct mode) or the API's default. Changing it rolls the pod in place.",
				Validators:          []validator.String{imageValidator()},
				PlanModifiers:       keep(),
			},
			"storage": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Size of the workspace's volume, a Kubernetes quantity such as `5Gi`. " +
					"It can grow in place (the StorageClass must allow volume expansion); shrinking it is refused at plan, " +
					"never turned into a replacement that would lose the files.",
				Validators:    []validator.String{quantityValidator("storage")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), storageNoShrink{}},
			},
			"cpu": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				MarkdownDescription: "CPU request of the workspace, such as `250m` or `1`.",
				Validators:          []validator.String{quantityValidator("cpu")},
				PlanModifiers:       keep(),
			},
			"memory": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				MarkdownDescription: "Memory request of the workspace, such as `256Mi` or `2Gi`.",
				Validators:          []validator.String{quantityValidator("memory")},
				PlanModifiers:       keep(),
			},
			"idle_timeout": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "How long the workspace may stay idle before the idle sweep puts it to sleep: a duration such as `15m` or `1h30m`, " +
					"at least `1m`, or `0` to never sleep. Activity is real use (typing, the terminal, a running build, the activity API); " +
					"an open browser tab without use keeps the workspace awake only up to `idle_connected_max`.",
				Validators:    []validator.String{idleTimeoutValidator()},
				PlanModifiers: keep(),
			},
			"idle_connected_max": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "How long a browser tab left open keeps the workspace awake without real use, counted from the last use: " +
					"past it the idle sweep puts the workspace to sleep with the tab still open (the IDE warns a minute before). " +
					"A duration such as `2h`, `0` for no cap (an open tab keeps it awake), otherwise at least `1m` and at least `idle_timeout`. " +
					"Unset, the deployment's `HYPERBOLA_IDLE_CONNECTED_MAX` applies (2h by default), raised to `idle_timeout` when that is longer. " +
					"Raising `idle_timeout` past it needs it raised too.",
				Validators:    []validator.String{idleConnectedMaxValidator()},
				PlanModifiers: keep(),
			},
			"ttl": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "The workspace's lifetime, counted from its creation: a duration such as `72h` or `720h`, at least `1h`, " +
					"or `0` for a workspace that never expires. When it expires, Hyperbola's idle sweep deletes the workspace " +
					"(backing its volume up first, as `backup_on_delete` says) and the next apply creates a new one. " +
					"Unset, the deployment's `SESSION_TTL` applies (24h by default), so a long-lived workspace should set `ttl = \"0\"`. " +
					"Changing it updates the workspace in place: the new lifetime still counts from `created_at`.",
				Validators:    []validator.String{ttlValidator()},
				PlanModifiers: keep(),
			},
			"backup_on_delete": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(true),
				MarkdownDescription: "Back the volume up before deleting the workspace. Default `true`. When the backup fails, destroy fails and the volume is kept.",
			},
			"labels": schema.MapAttribute{
				Optional:            true,
				ElementType:         types.StringType,
				MarkdownDescription: "Kubernetes labels for the workspace's objects (at most 32; the `hyperbola.dev/`, `app.kubernetes.io/`, `kubernetes.io/` and `k8s.io/` prefixes are reserved).",
				Validators:          []validator.Map{labelsValidator{}},
			},
			"wait_for_ready": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
				MarkdownDescription: "Wait, within the create or update timeout, until the workspace is running (or sleeping, for `state = \"sleeping\"`). " +
					"Default `true`. With `false`, apply returns once the objects are applied and `status` may read `creating` or `waking`.",
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"workspace_url": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Where the workspace is served: `https://vs-code-<id>.<domain>`.",
				PlanModifiers:       keep(),
			},
			"status": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The workspace's lifecycle status as last read: `creating`, `running`, `sleeping`, `waking`, " +
					"`deleting`, `deleted` or `failed`.",
				PlanModifiers: []planmodifier.String{statusPlan{}},
			},
			"created_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the workspace was created (RFC 3339, UTC).",
				PlanModifiers:       keep(),
			},
			"password": schema.StringAttribute{
				Computed:  true,
				Sensitive: true,
				MarkdownDescription: "The IDE password, returned when the workspace is created and kept in state. " +
					"It is null after `terraform import`: Hyperbola hands the password out only once, at creation.",
				PlanModifiers: keep(),
			},
			"restore_from": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Fill the new workspace's volume from a backup before it starts: a backup's `location` or `id` " +
					"(as the `hyperbola_backups` data source lists them), or the id of a deleted workspace (its latest backup). " +
					"The backup must be `user_id`'s. Without `storage`, the volume is at least as large as the backed-up workspace's. " +
					"A restore that fails leaves the workspace `failed` with the reason (the backup is untouched) and fails the apply; the next apply replaces it. " +
					"Changing it to another backup replaces the workspace; removing it, or naming the same backup another way, " +
					"changes only the state. Null after `terraform import`: `restored_from` reports the backup.",
				Validators: []validator.String{restoreFromValidator()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplaceIf(restoreFromReplace,
					"a restore_from naming another backup replaces the workspace",
					"a `restore_from` naming another backup replaces the workspace")},
			},
			"restored_from": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The location of the backup the workspace's volume was filled from (what `restore_from` resolved to); null when it was not restored.",
				PlanModifiers:       keep(),
			},
			"restored_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the restore from `restored_from` finished (RFC 3339, UTC); null while it runs, and for a workspace that was not restored.",
				PlanModifiers:       []planmodifier.String{restoredAtPlan{}},
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

// actor marks the session core's events as made by Terraform (direct mode).
func actor(ctx context.Context) context.Context { return session.WithActor(ctx, "terraform") }

// modelSource is where an operation reads its model from: the plan or the prior state.
type modelSource interface {
	Get(ctx context.Context, target any) diag.Diagnostics
}

// begin reads the model from src and bounds ctx by the operation's timeout (the timeouts
// block's value for op, or its default), with the session core's events made as Terraform's.
// ok is false when diags holds an error.
func begin(ctx context.Context, src modelSource, m *workspaceModel, op string, diags *diag.Diagnostics) (_ context.Context, _ context.CancelFunc, timeout time.Duration, ok bool) {
	diags.Append(src.Get(ctx, m)...)
	if diags.HasError() {
		return ctx, nil, 0, false
	}
	var d diag.Diagnostics
	switch op {
	case "create":
		timeout, d = m.Timeouts.Create(ctx, defaultCreateTimeout)
	case "update":
		timeout, d = m.Timeouts.Update(ctx, defaultUpdateTimeout)
	default:
		timeout, d = m.Timeouts.Delete(ctx, defaultDeleteTimeout)
	}
	diags.Append(d...)
	if diags.HasError() {
		return ctx, nil, 0, false
	}
	ctx, cancel := context.WithTimeout(actor(ctx), timeout)
	return ctx, cancel, timeout, true
}

// reading reads the model from src and bounds ctx by readTimeout, with the session core's
// events made as Terraform's; ok is false when diags holds an error.
func reading(ctx context.Context, src modelSource, m any, diags *diag.Diagnostics) (_ context.Context, _ context.CancelFunc, ok bool) {
	diags.Append(src.Get(ctx, m)...)
	if diags.HasError() {
		return ctx, nil, false
	}
	ctx, cancel := context.WithTimeout(actor(ctx), readTimeout)
	return ctx, cancel, true
}

func (r *workspaceResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan workspaceModel
	ctx, cancel, timeout, ok := begin(ctx, req.Plan, &plan, "create", &resp.Diagnostics)
	if !ok {
		return
	}
	defer cancel()

	creq := session.CreateRequest{
		UserID:      plan.UserID.ValueString(),
		Image:       plan.Image.ValueString(),
		Storage:     plan.Storage.ValueString(),
		CPU:         plan.CPU.ValueString(),
		Memory:      plan.Memory.ValueString(),
		State:       session.State(plan.State.ValueString()),
		RestoreFrom: plan.RestoreFrom.ValueString(),
		RequestID:   newRequestID(),
	}
	var ok1, ok2, ok3 bool
	creq.IdleTimeout, ok1 = durationOf(plan.IdleTimeout, "idle_timeout", &resp.Diagnostics)
	creq.IdleConnectedMax, ok3 = durationOf(plan.IdleConnectedMax, "idle_connected_max", &resp.Diagnostics)
	creq.TTL, ok2 = durationOf(plan.TTL, "ttl", &resp.Diagnostics)
	if !ok1 || !ok2 || !ok3 {
		return
	}
	if !plan.BackupOnDelete.IsNull() && !plan.BackupOnDelete.IsUnknown() {
		b := plan.BackupOnDelete.ValueBool()
		creq.BackupOnDelete = &b
	}
	labels, diags := labelsOf(ctx, plan.Labels)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	creq.Labels = labels

	sess, err := retry(ctx, r.c, "create", func(ctx context.Context) (*session.Session, error) {
		return r.c.m.Create(ctx, creq)
	})
	if err != nil {
		resp.Diagnostics.Append(errorDiagnostic("Cannot create workspace", err, workspaceFields()))
		return
	}
	tflog.Info(ctx, "workspace created", map[string]any{"id": sess.ID, "status": string(sess.State)})

	state := plan
	resp.Diagnostics.Append(state.fill(ctx, sess, &plan)...)
	state.Password = types.StringValue(sess.Password)
	// Record the workspace before waiting: if the wait fails, Terraform keeps it (tainted)
	// instead of losing track of a workspace that exists.
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	want := session.StateRunning
	if creq.State == session.StateSleeping {
		want = session.StateSleeping
	}
	if !plan.WaitForReady.ValueBool() || sess.State == want {
		return
	}
	got, err := r.c.waitSettled(ctx, sess.ID, want)
	if got != nil && got.State == session.StateFailed && got.RestoreFrom != "" && got.RestoredAt.IsZero() {
		// kept in state (tainted): the next apply replaces it
		pw := state.Password
		resp.Diagnostics.Append(state.fill(ctx, got, &plan)...)
		state.Password = pw
		resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
		resp.Diagnostics.Append(restoreFailed(got))
		return
	}
	sess = got
	if err != nil {
		resp.Diagnostics.AddError("Workspace did not become "+string(want),
			fmt.Sprintf("Workspace %s was created but did not become %s within the create timeout (%s); it is kept in state as tainted: %s",
				state.ID.ValueString(), want, timeout, err))
		return
	}
	pw := state.Password
	resp.Diagnostics.Append(state.fill(ctx, sess, &plan)...)
	state.Password = pw
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// restoreFailed says why the restore of workspace s failed.
func restoreFailed(s *session.Session) diag.Diagnostic {
	return diag.NewAttributeErrorDiagnostic(path.Root("restore_from"), "Restore failed",
		fmt.Sprintf("Workspace %s could not be filled from %s: %s. The backup is untouched; the workspace is kept in state as tainted, "+
			"so the next apply replaces it (or restore another backup).", s.ID, s.RestoreFrom, s.Reason))
}

// newRequestID makes a retried create idempotent: the session core returns the session the
// first attempt made instead of a second one.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "terraform-" + hex.EncodeToString(b[:])
}

func (r *workspaceResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var prior workspaceModel
	ctx, cancel, ok := reading(ctx, req.State, &prior, &resp.Diagnostics)
	if !ok {
		return
	}
	defer cancel()
	id := prior.ID.ValueString()
	sess, err := retry(ctx, r.c, "read", func(ctx context.Context) (*session.Session, error) {
		return r.c.m.Get(ctx, id)
	})
	if errors.Is(err, session.ErrNotFound) {
		resp.Diagnostics.AddWarning("Workspace no longer exists",
			fmt.Sprintf("Workspace %s was not found (deleted outside Terraform, or expired). It is removed from the state; the next apply creates it again.", id))
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(errorDiagnostic("Cannot read workspace "+id, err, workspaceFields()))
		return
	}
	if sess.State == session.StateDeleted || sess.State == session.StateDeleting {
		detail := fmt.Sprintf("Workspace %s is %s (deleted outside Terraform, or expired). It is removed from the state; the next apply creates a new one.", id, sess.State)
		if sess.BackupLocation != "" {
			detail += " Its volume was backed up to " + sess.BackupLocation + "."
		}
		resp.Diagnostics.AddWarning("Workspace was deleted", detail)
		resp.State.RemoveResource(ctx)
		return
	}
	state := prior
	resp.Diagnostics.Append(state.fill(ctx, sess, &prior)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *workspaceResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior workspaceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	ctx, cancel, timeout, ok := begin(ctx, req.Plan, &plan, "update", &resp.Diagnostics)
	if !ok {
		return
	}
	defer cancel()
	id := prior.ID.ValueString()

	ureq, changed, diags := updateRequest(ctx, &plan, &prior)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	var sess *session.Session
	var err error
	if changed {
		sess, err = retry(ctx, r.c, "update", func(ctx context.Context) (*session.Session, error) {
			return r.c.m.Update(ctx, id, ureq)
		})
		if err != nil {
			resp.Diagnostics.Append(errorDiagnostic("Cannot update workspace "+id, err, workspaceFields()))
			return
		}
	}

	// Then the state: sleep or wake when the plan asks for a state the workspace is not in.
	want := session.State(plan.State.ValueString())
	status := session.State(prior.Status.ValueString())
	if sess != nil {
		status = sess.State
	}
	switch {
	case want == session.StateSleeping && status != session.StateSleeping:
		sess, err = retry(ctx, r.c, "sleep", func(ctx context.Context) (*session.Session, error) { return r.c.m.Sleep(ctx, id) })
	case want == session.StateRunning && status != session.StateRunning && status != session.StateCreating && status != session.StateWaking:
		sess, err = retry(ctx, r.c, "wake", func(ctx context.Context) (*session.Session, error) { return r.c.m.Wake(ctx, id) })
	}
	if err != nil {
		resp.Diagnostics.Append(errorDiagnostic(fmt.Sprintf("Cannot change workspace %s to %s", id, want), err, workspaceFields()))
		return
	}
	if sess == nil {
		sess, err = retry(ctx, r.c, "read", func(ctx context.Context) (*session.Session, error) { return r.c.m.Get(ctx, id) })
		if err != nil {
			resp.Diagnostics.Append(errorDiagnostic("Cannot read workspace "+id, err, workspaceFields()))
			return
		}
	}
	if plan.WaitForReady.ValueBool() && (want == session.StateRunning || want == session.StateSleeping) && sess.State != want {
		got, err := r.c.waitSettled(ctx, id, want)
		if err != nil {
			resp.Diagnostics.AddError(fmt.Sprintf("Workspace %s did not become %s", id, want),
				fmt.Sprintf("The update was made, but the workspace did not become %s within the update timeout (%s): %s", want, timeout, err))
		}
		if got != nil {
			sess = got
		}
	}
	state := plan
	resp.Diagnostics.Append(state.fill(ctx, sess, &plan)...)
	state.Password = prior.Password
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// updateRequest lists the changes of the plan that Manager.Update makes: every attribute
// whose planned value differs from the state's.
func updateRequest(ctx context.Context, plan, prior *workspaceModel) (session.UpdateRequest, bool, diag.Diagnostics) {
	var u session.UpdateRequest
	var diags diag.Diagnostics
	changed := false
	str := func(p, s types.String) *string {
		if !known(p) || p.Equal(s) {
			return nil
		}
		changed = true
		v := p.ValueString()
		return &v
	}
	u.Image = str(plan.Image, prior.Image)
	u.Storage = str(plan.Storage, prior.Storage)
	u.CPU = str(plan.CPU, prior.CPU)
	u.Memory = str(plan.Memory, prior.Memory)
	var ok1, ok2, ok3 bool
	u.IdleTimeout, ok1 = durationChange(plan.IdleTimeout, prior.IdleTimeout, "idle_timeout", &diags)
	u.IdleConnectedMax, ok3 = durationChange(plan.IdleConnectedMax, prior.IdleConnectedMax, "idle_connected_max", &diags)
	u.TTL, ok2 = durationChange(plan.TTL, prior.TTL, "ttl", &diags)
	if !ok1 || !ok2 || !ok3 {
		return u, false, diags
	}
	changed = changed || u.IdleTimeout != nil || u.IdleConnectedMax != nil || u.TTL != nil
	if !plan.BackupOnDelete.IsUnknown() && !plan.BackupOnDelete.IsNull() && !plan.BackupOnDelete.Equal(prior.BackupOnDelete) {
		b := plan.BackupOnDelete.ValueBool()
		u.BackupOnDelete = &b
		changed = true
	}
	if !plan.Labels.IsUnknown() && !plan.Labels.Equal(prior.Labels) {
		labels, d := labelsOf(ctx, plan.Labels)
		diags.Append(d...)
		if labels == nil {
			labels = map[string]string{} // removed from the configuration: clear them
		}
		if len(labels) > 0 || (!prior.Labels.IsNull() && len(prior.Labels.Elements()) > 0) {
			u.Labels = labels
			changed = true
		}
	}
	return u, changed, diags
}

func (r *workspaceResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var prior workspaceModel
	ctx, cancel, _, ok := begin(ctx, req.State, &prior, "delete", &resp.Diagnostics)
	if !ok {
		return
	}
	defer cancel()
	id := prior.ID.ValueString()

	sess, err := retry(ctx, r.c, "delete", func(ctx context.Context) (*session.Session, error) {
		return r.c.m.Delete(ctx, id, session.DeleteOptions{})
	})
	if errors.Is(err, session.ErrNotFound) {
		return // already gone
	}
	if err != nil {
		resp.Diagnostics.Append(errorDiagnostic("Cannot delete workspace "+id, err, workspaceFields()))
		return
	}
	location := sess.BackupLocation
	if sess.State != session.StateDeleted {
		sess, err = r.c.poll(ctx, id, "be deleted", func(s *session.Session) (bool, error) {
			if s == nil {
				return true, nil
			}
			if s.BackupLocation != "" {
				location = s.BackupLocation
			}
			switch s.State {
			case session.StateDeleted:
				return true, nil
			case session.StateFailed:
				return false, &session.Error{Kind: session.KindBackup, Message: fmt.Sprintf("workspace %s: %s", id, s.Reason)}
			}
			return false, nil
		})
		if session.KindOf(err) == session.KindBackup {
			resp.Diagnostics.AddError("Backup failed, volume kept",
				fmt.Sprintf("Workspace %s was not deleted: its backup failed, so its volume was kept and the workspace is marked failed (%s). "+
					"It stays in the state; the next destroy tries the backup again. Set backup_on_delete = false (and apply) to delete it without a backup.",
					id, reasonOf(sess, err)))
			return
		}
		if err != nil {
			resp.Diagnostics.Append(errorDiagnostic("Workspace "+id+" was not deleted", err, workspaceFields()))
			return
		}
	}
	if location != "" {
		resp.Diagnostics.AddWarning("Workspace backed up",
			fmt.Sprintf("Workspace %s was deleted after its volume was backed up to %s.", id, location))
	}
	tflog.Info(ctx, "workspace deleted", map[string]any{"id": id, "backup_location": location})
}

// durationOf parses a duration attribute (nil when it is not known); ok is false, with a
// diagnostic naming attr, when it does not parse.
func durationOf(v types.String, attr string, diags *diag.Diagnostics) (_ *session.Duration, ok bool) {
	if !known(v) {
		return nil, true
	}
	d, err := session.ParseDuration(v.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root(attr), "Invalid "+attr, err.Error())
		return nil, false
	}
	return &d, true
}

// durationChange is durationOf for an update: nil when the planned duration equals the prior one.
func durationChange(plan, prior types.String, attr string, diags *diag.Diagnostics) (_ *session.Duration, ok bool) {
	if plan.Equal(prior) {
		return nil, true
	}
	d, ok := durationOf(plan, attr, diags)
	if d != nil {
		if was, err := session.ParseDuration(prior.ValueString()); err == nil && was == *d {
			return nil, ok
		}
	}
	return d, ok
}

// ValidateConfig checks, when both are known, that idle_connected_max is 0 or at least
// idle_timeout (session.CheckIdlePair, the rule the session core applies).
func (r *workspaceResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var idle, connectedMax types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("idle_timeout"), &idle)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("idle_connected_max"), &connectedMax)...)
	if resp.Diagnostics.HasError() || !known(idle) || !known(connectedMax) {
		return
	}
	i, err1 := session.ParseDuration(idle.ValueString())
	c, err2 := session.ParseDuration(connectedMax.ValueString())
	if err1 != nil || err2 != nil {
		return // the attributes' own validators say so
	}
	if err := session.CheckIdlePair(i, c); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("idle_connected_max"), "Invalid idle_connected_max", err.Error())
	}
}

func reasonOf(s *session.Session, err error) string {
	if s != nil && s.Reason != "" {
		return s.Reason
	}
	return err.Error()
}

func (r *workspaceResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !session.ValidID(req.ID) {
		resp.Diagnostics.AddError("Invalid workspace id",
			fmt.Sprintf("%q is not a workspace id: 8 characters of [a-z0-9], starting with a letter, e.g. terraform import hyperbola_workspace.dev ab12cd34.", req.ID))
		return
	}
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
