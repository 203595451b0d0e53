package provider

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// workspaceModel is hyperbola_workspace's state.
type workspaceModel struct {
	ID               types.String   `tfsdk:"id"`
	UserID           types.String   `tfsdk:"user_id"`
	State            types.String   `tfsdk:"state"`
	Image            types.String   `tfsdk:"image"`
	Storage          types.String   `tfsdk:"storage"`
	CPU              types.String   `tfsdk:"cpu"`
	Memory           types.String   `tfsdk:"memory"`
	IdleTimeout      types.String   `tfsdk:"idle_timeout"`
	IdleConnectedMax types.String   `tfsdk:"idle_connected_max"`
	TTL              types.String   `tfsdk:"ttl"`
	BackupOnDelete   types.Bool     `tfsdk:"backup_on_delete"`
	Labels           types.Map      `tfsdk:"labels"`
	WaitForReady     types.Bool     `tfsdk:"wait_for_ready"`
	WorkspaceURL     types.String   `tfsdk:"workspace_url"`
	Status           types.String   `tfsdk:"status"`
	CreatedAt        types.String   `tfsdk:"created_at"`
	Password         types.String   `tfsdk:"password"`
	RestoreFrom      types.String   `tfsdk:"restore_from"`
	RestoredFrom     types.String   `tfsdk:"restored_from"`
	RestoredAt       types.String   `tfsdk:"restored_at"`
	Timeouts         timeouts.Value `tfsdk:"timeouts"`
}

// fill sets the model from a session. prior is the model whose spelling of equivalent values
// is kept (the plan after create and update, the prior state after read): "5120Mi" stays
// "5120Mi" when the workspace reports "5Gi", "15m" stays "15m" when it reports "15m0s".
// The password, wait_for_ready, timeouts and restore_from (what the configuration named, where
// the session reports the archive it resolved to: restored_from) are kept too.
func (m *workspaceModel) fill(ctx context.Context, s *session.Session, prior *workspaceModel) diag.Diagnostics {
	var diags diag.Diagnostics
	m.ID = types.StringValue(s.ID)
	m.UserID = types.StringValue(s.UserID)
	m.Status = types.StringValue(string(s.State))
	m.State = desiredState(s.State, prior.State)
	m.Image = types.StringValue(s.Image)
	m.Storage = sameQuantity(prior.Storage, s.Storage)
	m.CPU = sameQuantity(prior.CPU, s.CPU)
	m.Memory = sameQuantity(prior.Memory, s.Memory)
	m.IdleTimeout = sameDuration(prior.IdleTimeout, s.IdleTimeout.D())
	m.IdleConnectedMax = sameDuration(prior.IdleConnectedMax, s.IdleConnectedMax.D())
	m.TTL = sessionTTL(prior.TTL, s)
	m.BackupOnDelete = types.BoolValue(s.BackupOnDelete)
	switch {
	case len(s.Labels) > 0:
		m.Labels, diags = types.MapValueFrom(ctx, types.StringType, s.Labels)
	case !prior.Labels.IsNull() && !prior.Labels.IsUnknown() && len(prior.Labels.Elements()) == 0:
		m.Labels = prior.Labels // labels = {} in the configuration
	default:
		m.Labels = types.MapNull(types.StringType)
	}
	m.WorkspaceURL = types.StringValue(s.WorkspaceURL)
	m.CreatedAt = types.StringValue(s.CreatedAt.UTC().Format(time.RFC3339))
	m.WaitForReady = prior.WaitForReady
	if m.WaitForReady.IsNull() || m.WaitForReady.IsUnknown() {
		m.WaitForReady = types.BoolValue(true) // after import
	}
	m.Timeouts = prior.Timeouts
	m.Password = prior.Password
	if m.Password.IsUnknown() {
		m.Password = types.StringNull()
	}
	m.RestoreFrom = prior.RestoreFrom
	if m.RestoreFrom.IsUnknown() {
		m.RestoreFrom = types.StringNull()
	}
	m.RestoredFrom = optString(s.RestoreFrom)
	m.RestoredAt = optTime(s.RestoredAt)
	return diags
}

// desiredState is the `state` attribute for a workspace in status st: running or sleeping
// for a workspace that is (or is becoming) so, "failed" for a failed one (an apply that pins
// a state then repairs it), and the prior value otherwise.
func desiredState(st session.State, prior types.String) types.String {
	switch st {
	case session.StateRunning, session.StateCreating, session.StateWaking:
		return types.StringValue(string(session.StateRunning))
	case session.StateSleeping:
		return types.StringValue(string(session.StateSleeping))
	case session.StateFailed:
		return types.StringValue(string(session.StateFailed))
	}
	if prior.IsUnknown() {
		return types.StringNull()
	}
	return prior
}

// sameQuantity returns prior when it is the same quantity as got, got otherwise.
func sameQuantity(prior types.String, got string) types.String {
	if !prior.IsNull() && !prior.IsUnknown() {
		a, errA := session.ParseQuantity("q", prior.ValueString())
		b, errB := session.ParseQuantity("q", got)
		if errA == nil && errB == nil && a.Cmp(b) == 0 {
			return prior
		}
	}
	return types.StringValue(got)
}

// sameDuration returns prior when it is the same duration as got, got in its shortest form
// ("15m", "1h30m", "0s") otherwise.
func sameDuration(prior types.String, got time.Duration) types.String {
	if !prior.IsNull() && !prior.IsUnknown() {
		if d, err := time.ParseDuration(strings.TrimSpace(prior.ValueString())); err == nil && d == got {
			return prior
		}
	}
	return types.StringValue(shortDuration(got))
}

// sessionTTL is the `ttl` attribute of session s: its lifetime, ExpiresAt - CreatedAt, or "0"
// when it never expires; prior's spelling is kept when it means the same.
func sessionTTL(prior types.String, s *session.Session) types.String {
	if s.ExpiresAt.IsZero() {
		if known(prior) {
			if d, err := time.ParseDuration(strings.TrimSpace(prior.ValueString())); err == nil && d == 0 {
				return prior
			}
		}
		return types.StringValue("0")
	}
	return sameDuration(prior, s.ExpiresAt.Sub(s.CreatedAt))
}

// shortDuration formats d as time.Duration does, without the trailing zero units.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// labelsOf returns the labels of a plan: nil for null or unknown.
func labelsOf(ctx context.Context, m types.Map) (map[string]string, diag.Diagnostics) {
	if m.IsNull() || m.IsUnknown() {
		return nil, nil
	}
	out := map[string]string{}
	diags := m.ElementsAs(ctx, &out, false)
	return out, diags
}

// optString is v, or null when it is empty.
func optString(v string) types.String {
	if v == "" {
		return types.StringNull()
	}
	return types.StringValue(v)
}

// optTime is t in RFC 3339 (UTC), or null when it is zero.
func optTime(t time.Time) types.String {
	if t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339))
}

// known reports a known, non-null string.
func known(s types.String) bool { return !s.IsNull() && !s.IsUnknown() }
