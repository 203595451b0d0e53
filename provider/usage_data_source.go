package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// usageFigures mirrors events.Usage's JSON: the hours and the estimated cost of one session,
// one user or everything within the window.
type usageFigures struct {
	RunningHours    types.Float64 `tfsdk:"running_hours"`
	SleepingHours   types.Float64 `tfsdk:"sleeping_hours"`
	StoppedHours    types.Float64 `tfsdk:"stopped_hours"`
	LifetimeHours   types.Float64 `tfsdk:"lifetime_hours"`
	StorageGBMonths types.Float64 `tfsdk:"storage_gb_months"`
	ComputeCost     types.Float64 `tfsdk:"compute_cost"`
	StorageCost     types.Float64 `tfsdk:"storage_cost"`
	EstimatedCost   types.Float64 `tfsdk:"estimated_cost"`
	AlwaysOnCost    types.Float64 `tfsdk:"always_on_cost"`
	SavingsPercent  types.Float64 `tfsdk:"savings_percent"`
	SleptByCap      types.Int64   `tfsdk:"slept_by_cap"`
	SavedHours      types.Float64 `tfsdk:"saved_hours"`
}

func figuresOf(u events.Usage) usageFigures {
	return usageFigures{
		RunningHours:    types.Float64Value(u.RunningHours),
		SleepingHours:   types.Float64Value(u.SleepingHours),
		StoppedHours:    types.Float64Value(u.StoppedHours),
		LifetimeHours:   types.Float64Value(u.LifetimeHours),
		StorageGBMonths: types.Float64Value(u.StorageGBMonths),
		ComputeCost:     types.Float64Value(u.ComputeCost),
		StorageCost:     types.Float64Value(u.StorageCost),
		EstimatedCost:   types.Float64Value(u.Cost),
		AlwaysOnCost:    types.Float64Value(u.AlwaysOnCost),
		SavingsPercent:  types.Float64Value(u.SavingsPercent),
		SleptByCap:      types.Int64Value(int64(u.SleptByCap)),
		SavedHours:      types.Float64Value(u.SavedHours),
	}
}

// userUsage mirrors events.UserUsage.
type userUsage struct {
	UserID   types.String `tfsdk:"user_id"`
	Sessions types.Int64  `tfsdk:"sessions"`
	usageFigures
}

// sessionUsage mirrors events.SessionUsage (its "uuid" is the workspace's id).
type sessionUsage struct {
	ID        types.String `tfsdk:"id"`
	UserID    types.String `tfsdk:"user_id"`
	Status    types.String `tfsdk:"status"`
	CreatedAt types.String `tfsdk:"created_at"`
	DeletedAt types.String `tfsdk:"deleted_at"`
	usageFigures
}

type usageModel struct {
	UserID                 types.String   `tfsdk:"user_id"`
	From                   types.String   `tfsdk:"from"`
	To                     types.String   `tfsdk:"to"`
	GeneratedAt            types.String   `tfsdk:"generated_at"`
	Currency               types.String   `tfsdk:"currency"`
	PricePerRunningHour    types.Float64  `tfsdk:"price_per_running_hour"`
	StoragePricePerGBMonth types.Float64  `tfsdk:"storage_price_per_gb_month"`
	PendingEvents          types.Int64    `tfsdk:"pending_events"`
	Total                  *usageFigures  `tfsdk:"total"`
	Users                  []userUsage    `tfsdk:"users"`
	Sessions               []sessionUsage `tfsdk:"sessions"`
}

// figureAttributes is the schema of usageFigures.
func figureAttributes() map[string]schema.Attribute {
	f := func(desc string) schema.Float64Attribute {
		return schema.Float64Attribute{Computed: true, MarkdownDescription: desc}
	}
	return map[string]schema.Attribute{
		"running_hours":     f("Hours with a pod up (or meant to be): `creating`, `running`, `waking`."),
		"sleeping_hours":    f("Hours asleep: no pod, the volume kept."),
		"stopped_hours":     f("Hours `deleting` (the backup runs) or `failed`: no pod, the volume kept, not by the user's choice."),
		"lifetime_hours":    f("Running + sleeping + stopped hours: what an always-on workspace would have run."),
		"storage_gb_months": f("Volume kept, in GiB-months (730 hours a month)."),
		"compute_cost":      f("Running hours × `price_per_running_hour`."),
		"storage_cost":      f("`storage_gb_months` × `storage_price_per_gb_month`."),
		"estimated_cost":    f("The estimate: `compute_cost` + `storage_cost`, in `currency`."),
		"always_on_cost":    f("What the same workspaces would have cost running their whole lifetime (plus the same storage)."),
		"savings_percent":   f("100 × (`always_on_cost` − `estimated_cost`) / `always_on_cost`; with no prices, the share of the lifetime not spent running."),
		"slept_by_cap": schema.Int64Attribute{Computed: true, MarkdownDescription: "Sleeps by the idle sweep's connected cap within the window: " +
			"a browser tab open, nobody using the workspace for its `idle_connected_max`."},
		"saved_hours": f("Hours asleep after those sleeps, each until the next wake or delete or the window's end (part of `sleeping_hours`): " +
			"what the heartbeat rule alone (an open tab keeps a workspace awake) would have kept running. An upper bound: the user might have closed the tab sooner."),
	}
}

func withFigures(attrs map[string]schema.Attribute) map[string]schema.Attribute {
	for k, v := range figureAttributes() {
		attrs[k] = v
	}
	return attrs
}

// timeValidator: an RFC 3339 time, read as the API reads its from and to.
func timeValidator(field string) validator.String {
	return stringCheck{
		desc: "an RFC 3339 time such as 2026-01-31T00:00:00Z",
		check: func(s string) error {
			_, err := parseTime(field, s)
			return err
		},
	}
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time such as 2026-01-31T00:00:00Z or 2026-01-31T09:00:00+05:30: %w", field, s, err)
	}
	return t, nil
}

type usageDataSource struct{ configuredDataSource }

var (
	_ datasource.DataSourceWithConfigure      = (*usageDataSource)(nil)
	_ datasource.DataSourceWithValidateConfig = (*usageDataSource)(nil)
)

func newUsageDataSource() datasource.DataSource { return &usageDataSource{} }

func (d *usageDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_usage"
}

func (d *usageDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The usage report: the hours workspaces spent running, sleeping and stopped within a window, " +
			"per workspace, per user and in total, with the estimated cost and the savings against always-on workspaces.\n\n" +
			"The report is computed from Hyperbola's durable records (Firestore), so the deployment must keep them: " +
			"in endpoint mode the API needs `GOOGLE_CLOUD_PROJECT` (it answers 501 otherwise); in direct mode set the provider's " +
			"`firestore_project`. Without them reading this data source fails. Prices and currency are the control plane's " +
			"(`HYPERBOLA_PRICE_PER_HOUR`, `HYPERBOLA_STORAGE_PRICE_PER_GB_MONTH`, `HYPERBOLA_CURRENCY`; in direct mode read from the environment).\n\n" +
			"Time before a workspace's first recorded event is unknown and not counted; a state still open at the end of the window counts until then. " +
			"Workspaces with no time in the window are left out.",
		Attributes: map[string]schema.Attribute{
			"user_id": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Only the workspaces of this user (default: everyone's).",
				Validators:          []validator.String{userIDValidator()},
			},
			"from": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Start of the window, an RFC 3339 time such as `2026-01-01T00:00:00Z`, or " +
					"`timeadd(plantimestamp(), \"-720h\")` for the last 30 days. Must be before `to`, and at most 93 days before it " +
					"(the API reads a bounded window).",
				Validators: []validator.String{timeValidator("from")},
			},
			"to": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "End of the window (excluded), an RFC 3339 time (default: now; a time in the future counts as now).",
				Validators:          []validator.String{timeValidator("to")},
			},
			"generated_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the report was computed (RFC 3339, UTC): the end of the window when `to` is unset or later.",
			},
			"currency": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "ISO 4217 currency of the costs, e.g. `USD`.",
			},
			"price_per_running_hour": schema.Float64Attribute{
				Computed:            true,
				MarkdownDescription: "What one workspace costs per running hour.",
			},
			"storage_price_per_gb_month": schema.Float64Attribute{
				Computed:            true,
				MarkdownDescription: "What one GiB of volume costs per month (0: storage left out of the costs).",
			},
			"pending_events": schema.Int64Attribute{
				Computed: true,
				MarkdownDescription: "Events that wait in the Redis queue to be written to Firestore: while it is not 0 the figures may be behind " +
					"(the sweep flushes the queue). `-1` when the queue could not be read.",
			},
			"total": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "Every workspace in the report together.",
				Attributes:          figureAttributes(),
			},
			"users": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "One line per user, ordered by user id.",
				NestedObject: schema.NestedAttributeObject{Attributes: withFigures(map[string]schema.Attribute{
					"user_id":  schema.StringAttribute{Computed: true, MarkdownDescription: "The user."},
					"sessions": schema.Int64Attribute{Computed: true, MarkdownDescription: "How many of the user's workspaces are in the report."},
				})},
			},
			"sessions": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "One line per workspace, ordered by user, then creation time.",
				NestedObject: schema.NestedAttributeObject{Attributes: withFigures(map[string]schema.Attribute{
					"id":         schema.StringAttribute{Computed: true, MarkdownDescription: "The workspace's id."},
					"user_id":    schema.StringAttribute{Computed: true, MarkdownDescription: "Who the workspace belongs to."},
					"status":     schema.StringAttribute{Computed: true, MarkdownDescription: "The workspace's status at the end of the window."},
					"created_at": schema.StringAttribute{Computed: true, MarkdownDescription: "Creation time (RFC 3339, UTC)."},
					"deleted_at": schema.StringAttribute{Computed: true, MarkdownDescription: "Deletion time (RFC 3339, UTC), once deleted."},
				})},
			},
		},
	}
}

// ValidateConfig checks the window at plan as the API checks it (events.UsageQuery.Check):
// from before to (the report covers [from, to)), at most events.MaxUsageWindow long, with
// to unset counting from now.
func (d *usageDataSource) ValidateConfig(ctx context.Context, req datasource.ValidateConfigRequest, resp *datasource.ValidateConfigResponse) {
	var from, to types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("from"), &from)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("to"), &to)...)
	if resp.Diagnostics.HasError() || from.IsNull() || from.IsUnknown() || to.IsUnknown() {
		return
	}
	var q events.UsageQuery
	var ferr, terr error
	q.From, ferr = parseTime("from", from.ValueString())
	if !to.IsNull() {
		q.To, terr = parseTime("to", to.ValueString())
	}
	if ferr != nil || terr != nil {
		return // the attribute validators report it
	}
	if err := q.Check(time.Now()); err != nil {
		field := session.FieldOf(err)
		if field != "to" {
			field = "from"
		}
		resp.Diagnostics.AddAttributeError(path.Root(field), "Invalid usage window",
			err.Error()+": the report covers the time from `from` up to, not including, `to` (default: now).")
	}
}

func (d *usageDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m usageModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	q := events.UsageQuery{UserID: m.UserID.ValueString()}
	for _, w := range []struct {
		field string
		v     types.String
		t     *time.Time
	}{{"from", m.From, &q.From}, {"to", m.To, &q.To}} {
		if w.v.IsNull() {
			continue
		}
		t, err := parseTime(w.field, w.v.ValueString())
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root(w.field), "Invalid "+w.field, err.Error())
			return
		}
		*w.t = t
	}
	ctx, cancel := context.WithTimeout(actor(ctx), readTimeout)
	defer cancel()
	rep, err := retry(ctx, d.c, "usage", func(ctx context.Context) (*events.UsageReport, error) {
		return d.c.usage.Usage(ctx, q)
	})
	if err != nil {
		resp.Diagnostics.Append(errorDiagnostic("Cannot read the usage report", err,
			fieldPaths{"user_id": path.Root("user_id"), "from": path.Root("from"), "to": path.Root("to")}))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, usageStateOf(m, rep))...)
}

// usageStateOf is the data source's state: the configured filters and the report.
func usageStateOf(cfg usageModel, rep *events.UsageReport) *usageModel {
	ts := func(t time.Time) types.String {
		if t.IsZero() {
			return types.StringNull()
		}
		return types.StringValue(t.UTC().Format(time.RFC3339))
	}
	total := figuresOf(rep.Total)
	m := &usageModel{
		UserID:                 cfg.UserID,
		From:                   cfg.From,
		To:                     cfg.To,
		GeneratedAt:            ts(rep.GeneratedAt),
		Currency:               types.StringValue(rep.Prices.Currency),
		PricePerRunningHour:    types.Float64Value(rep.Prices.PerRunningHour),
		StoragePricePerGBMonth: types.Float64Value(rep.Prices.PerGBMonth),
		PendingEvents:          types.Int64Value(int64(rep.PendingEvents)),
		Total:                  &total,
		Users:                  make([]userUsage, 0, len(rep.Users)),
		Sessions:               make([]sessionUsage, 0, len(rep.Sessions)),
	}
	for _, u := range rep.Users {
		m.Users = append(m.Users, userUsage{
			UserID:       types.StringValue(u.UserID),
			Sessions:     types.Int64Value(int64(u.Sessions)),
			usageFigures: figuresOf(u.Usage),
		})
	}
	for _, s := range rep.Sessions {
		status := types.StringNull()
		if s.State != "" {
			status = types.StringValue(string(s.State))
		}
		m.Sessions = append(m.Sessions, sessionUsage{
			ID:           types.StringValue(s.SessionID),
			UserID:       types.StringValue(s.UserID),
			Status:       status,
			CreatedAt:    ts(s.CreatedAt),
			DeletedAt:    ts(s.DeletedAt),
			usageFigures: figuresOf(s.Usage),
		})
	}
	return m
}
