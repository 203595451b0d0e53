package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// backupsModel is hyperbola_backups' state.
type backupsModel struct {
	UserID    types.String `tfsdk:"user_id"`
	SessionID types.String `tfsdk:"session_id"`
	Backups   []backupInfo `tfsdk:"backups"`
}

// backupInfo is one archive of the backup catalog.
type backupInfo struct {
	ID        types.String `tfsdk:"id"`
	SessionID types.String `tfsdk:"session_id"`
	UserID    types.String `tfsdk:"user_id"`
	Location  types.String `tfsdk:"location"`
	SizeBytes types.Int64  `tfsdk:"size_bytes"`
	Storage   types.String `tfsdk:"storage"`
	CreatedAt types.String `tfsdk:"created_at"`
	ExpiresAt types.String `tfsdk:"expires_at"`
	Status    types.String `tfsdk:"status"`
}

func backupInfoOf(b *session.BackupRecord) backupInfo {
	return backupInfo{
		ID:        types.StringValue(b.ID),
		SessionID: types.StringValue(b.SessionID),
		UserID:    types.StringValue(b.UserID),
		Location:  types.StringValue(b.Location),
		SizeBytes: types.Int64Value(b.Bytes),
		Storage:   optString(b.Storage),
		CreatedAt: optTime(b.CreatedAt),
		ExpiresAt: optTime(b.ExpiresAt),
		Status:    types.StringValue(string(b.State)),
	}
}

type backupsDataSource struct{ configuredDataSource }

var _ datasource.DataSourceWithConfigure = (*backupsDataSource)(nil)

func newBackupsDataSource() datasource.DataSource { return &backupsDataSource{} }

func (d *backupsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backups"
}

func (d *backupsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "The backups that deleting workspaces made, newest first, optionally filtered by owner and workspace " +
			"(all pages are read). A backup's `id` or `location` is what `hyperbola_workspace`'s `restore_from` takes.",
		Attributes: map[string]schema.Attribute{
			"user_id": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Only the backups of this user's workspaces.",
				Validators:          []validator.String{userIDValidator()},
			},
			"session_id": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Only the backups of this workspace (its id; the workspace may be deleted).",
				Validators: []validator.String{stringCheck{
					desc:  "a workspace id: 8 characters of [a-z0-9], starting with a letter",
					check: session.CheckID,
				}},
			},
			"backups": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The backups found, newest first.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"id":         str("The backup's id, `<workspace id>-<UTC time>` such as `ab12cd34-20261126T020304Z`."),
					"session_id": str("The id of the workspace it was taken from."),
					"user_id":    str("Who that workspace belonged to."),
					"location":   str("Where the archive is, such as `pvc://hyperbola-backups/ab12cd34/ab12cd34-20261126T020304Z.zip`."),
					"size_bytes": schema.Int64Attribute{Computed: true, MarkdownDescription: "The archive's size in bytes."},
					"storage":    str("The volume size of the workspace it was taken from: a restore that sets no `storage` gets at least this much."),
					"created_at": str("When it was taken (RFC 3339, UTC)."),
					"expires_at": str("When Hyperbola removes it (RFC 3339, UTC); null when it is kept until deleted."),
					"status":     str("`available` (restorable) or `removing` (being deleted)."),
				}},
			},
		},
	}
}

func (d *backupsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m backupsModel
	ctx, cancel, ok := reading(ctx, req.Config, &m, &resp.Diagnostics)
	if !ok {
		return
	}
	defer cancel()
	opts := session.BackupListOptions{
		UserID:    m.UserID.ValueString(),
		SessionID: m.SessionID.ValueString(),
		Limit:     listPageSize,
	}
	m.Backups = []backupInfo{}
	seen := map[string]bool{}
	for {
		page, err := retry(ctx, d.c, "list backups", func(ctx context.Context) (*session.BackupList, error) {
			return d.c.m.ListBackups(ctx, opts)
		})
		if err != nil {
			resp.Diagnostics.Append(errorDiagnostic("Cannot list backups", err,
				fieldPaths{"user_id": path.Root("user_id"), "session_id": path.Root("session_id")}))
			return
		}
		for _, b := range page.Backups {
			if seen[b.ID] { // an archive listed again after a change between pages
				continue
			}
			seen[b.ID] = true
			m.Backups = append(m.Backups, backupInfoOf(b))
		}
		if page.NextCursor == "" || page.NextCursor == opts.Cursor {
			break
		}
		opts.Cursor = page.NextCursor
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
