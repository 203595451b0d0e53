package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// listPageSize is how many workspaces one List call asks for.
const listPageSize = 200

type workspacesModel struct {
	UserID     types.String    `tfsdk:"user_id"`
	Status     types.String    `tfsdk:"status"`
	IDs        types.List      `tfsdk:"ids"`
	Workspaces []workspaceInfo `tfsdk:"workspaces"`
}

type workspacesDataSource struct{ configuredDataSource }

var _ datasource.DataSourceWithConfigure = (*workspacesDataSource)(nil)

func newWorkspacesDataSource() datasource.DataSource { return &workspacesDataSource{} }

func (d *workspacesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_workspaces"
}

func (d *workspacesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	states := make([]string, 0, len(session.States))
	for _, s := range session.States {
		states = append(states, string(s))
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Every workspace, oldest first, optionally filtered by owner and status (all pages are read).",
		Attributes: map[string]schema.Attribute{
			"user_id": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Only the workspaces of this user.",
				Validators:          []validator.String{userIDValidator()},
			},
			"status": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Only the workspaces in this status: `creating`, `running`, `sleeping`, `waking`, `deleting`, `deleted` or `failed`.",
				Validators:          []validator.String{stringvalidator.OneOf(states...)},
			},
			"ids": schema.ListAttribute{
				Computed:            true,
				ElementType:         types.StringType,
				MarkdownDescription: "The ids of the workspaces found, oldest first.",
			},
			"workspaces": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The workspaces found, oldest first.",
				NestedObject:        schema.NestedAttributeObject{Attributes: infoAttributes(false)},
			},
		},
	}
}

func (d *workspacesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m workspacesModel
	ctx, cancel, ok := reading(ctx, req.Config, &m, &resp.Diagnostics)
	if !ok {
		return
	}
	defer cancel()
	opts := session.ListOptions{
		UserID: m.UserID.ValueString(),
		State:  session.State(m.Status.ValueString()),
		Limit:  listPageSize,
	}
	m.Workspaces = []workspaceInfo{}
	ids := []string{}
	seen := map[string]bool{}
	for {
		page, err := retry(ctx, d.c, "list", func(ctx context.Context) (*session.ListResult, error) {
			return d.c.m.List(ctx, opts)
		})
		if err != nil {
			resp.Diagnostics.Append(errorDiagnostic("Cannot list workspaces", err,
				fieldPaths{"user_id": path.Root("user_id"), "status": path.Root("status")}))
			return
		}
		for _, s := range page.Sessions {
			if seen[s.ID] { // a workspace that changed between pages
				continue
			}
			seen[s.ID] = true
			info, diags := infoOf(ctx, s)
			resp.Diagnostics.Append(diags...)
			m.Workspaces = append(m.Workspaces, info)
			ids = append(ids, s.ID)
		}
		if page.NextCursor == "" || page.NextCursor == opts.Cursor {
			break
		}
		opts.Cursor = page.NextCursor
	}
	list, diags := types.ListValueFrom(ctx, types.StringType, ids)
	resp.Diagnostics.Append(diags...)
	m.IDs = list
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
