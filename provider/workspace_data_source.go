package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// workspaceInfo is one workspace as the data sources report it (no password: Hyperbola hands
// it out only at creation).
type workspaceInfo struct {
	ID               types.String `tfsdk:"id"`
	UserID           types.String `tfsdk:"user_id"`
	Status           types.String `tfsdk:"status"`
	Reason           types.String `tfsdk:"reason"`
	Image            types.String `tfsdk:"image"`
	Storage          types.String `tfsdk:"storage"`
	CPU              types.String `tfsdk:"cpu"`
	Memory           types.String `tfsdk:"memory"`
	IdleTimeout      types.String `tfsdk:"idle_timeout"`
	IdleConnectedMax types.String `tfsdk:"idle_connected_max"`
	BackupOnDelete   types.Bool   `tfsdk:"backup_on_delete"`
	Labels           types.Map    `tfsdk:"labels"`
	WorkspaceURL     types.String `tfsdk:"workspace_url"`
	CreatedAt        types.String `tfsdk:"created_at"`
	UpdatedAt        types.String `tfsdk:"updated_at"`
	LastActivity     types.String `tfsdk:"last_activity"`
	ExpiresAt        types.String `tfsdk:"expires_at"`
	BackupLocation   types.String `tfsdk:"backup_location"`
}

func infoOf(ctx context.Context, s *session.Session) (workspaceInfo, diag.Diagnostics) {
	ts := func(t time.Time) types.String {
		if t.IsZero() {
			return types.StringNull()
		}
		return types.StringValue(t.UTC().Format(time.RFC3339))
	}
	opt := func(v string) types.String {
		if v == "" {
			return types.StringNull()
		}
		return types.StringValue(v)
	}
	labels, diags := types.MapValueFrom(ctx, types.StringType, s.Labels)
	if s.Labels == nil {
		labels = types.MapValueMust(types.StringType, nil)
	}
	return workspaceInfo{
		ID:               types.StringValue(s.ID),
		UserID:           types.StringValue(s.UserID),
		Status:           types.StringValue(string(s.State)),
		Reason:           opt(s.Reason),
		Image:            types.StringValue(s.Image),
		Storage:          types.StringValue(s.Storage),
		CPU:              types.StringValue(s.CPU),
		Memory:           types.StringValue(s.Memory),
		IdleTimeout:      types.StringValue(shortDuration(s.IdleTimeout.D())),
		IdleConnectedMax: types.StringValue(shortDuration(s.IdleConnectedMax.D())),
		BackupOnDelete:   types.BoolValue(s.BackupOnDelete),
		Labels:           labels,
		WorkspaceURL:     types.StringValue(s.WorkspaceURL),
		CreatedAt:        ts(s.CreatedAt),
		UpdatedAt:        ts(s.UpdatedAt),
		LastActivity:     ts(s.LastActivity),
		ExpiresAt:        ts(s.ExpiresAt),
		BackupLocation:   opt(s.BackupLocation),
	}, diags
}

// infoAttributes is the schema of workspaceInfo; the id is required in the single-workspace
// data source and computed in the list.
func infoAttributes(idRequired bool) map[string]schema.Attribute {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	id := computed("The workspace's id.")
	if idRequired {
		id = schema.StringAttribute{
			Required:            true,
			MarkdownDescription: "The workspace's id: 8 characters of `[a-z0-9]`, starting with a letter.",
			Validators:          []validator.String{stringCheck{desc: "a workspace id", check: session.CheckID}},
		}
	}
	return map[string]schema.Attribute{
		"id":                 id,
		"user_id":            computed("Who the workspace belongs to."),
		"status":             computed("Lifecycle status: `creating`, `running`, `sleeping`, `waking`, `deleting`, `deleted` or `failed`."),
		"reason":             computed("Why the workspace failed or cannot become ready, when it did."),
		"image":              computed("Container image."),
		"storage":            computed("Volume size."),
		"cpu":                computed("CPU request."),
		"memory":             computed("Memory request."),
		"idle_timeout":       computed("Idle timeout (`0s`: never sleeps)."),
		"idle_connected_max": computed("How long a browser tab left open keeps the workspace awake without real use, from its last use (`0s`: no cap)."),
		"backup_on_delete":   schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the volume is backed up before deletion."},
		"labels":             schema.MapAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "User labels."},
		"workspace_url":      computed("Where the workspace is served."),
		"created_at":         computed("Creation time (RFC 3339, UTC)."),
		"updated_at":         computed("Time of the last change (RFC 3339, UTC)."),
		"last_activity":      computed("Time of the last activity seen (RFC 3339, UTC)."),
		"expires_at":         computed("When the workspace's lifetime ends and the idle sweep deletes it (RFC 3339, UTC); null when it never expires (`ttl = \"0\"`)."),
		"backup_location":    computed("Where the volume was backed up, once a delete has backed it up."),
	}
}

type workspaceDataSource struct{ configuredDataSource }

var _ datasource.DataSourceWithConfigure = (*workspaceDataSource)(nil)

func newWorkspaceDataSource() datasource.DataSource { return &workspaceDataSource{} }

func (d *workspaceDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_workspace"
}

func (d *workspaceDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "One workspace, by id, whoever manages it (Terraform, the API or another tool).",
		Attributes:          infoAttributes(true),
	}
}

func (d *workspaceDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var id types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("id"), &id)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(actor(ctx), readTimeout)
	defer cancel()
	sess, err := retry(ctx, d.c, "read", func(ctx context.Context) (*session.Session, error) {
		return d.c.m.Get(ctx, id.ValueString())
	})
	if err != nil {
		resp.Diagnostics.Append(errorDiagnostic("Cannot read workspace "+id.ValueString(), err, fieldPaths{"uuid": path.Root("id")}))
		return
	}
	info, diags := infoOf(ctx, sess)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &info)...)
}
