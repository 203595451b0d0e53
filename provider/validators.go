package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// The validators below run the session core's own checks at plan time, so a bad value fails
// before any API call and with the same rule the API would apply.

// stringCheck is a string validator from a check function; the error's message becomes the
// diagnostic's detail, attached to the attribute.
type stringCheck struct {
	desc  string
	check func(string) error
}

func (v stringCheck) Description(context.Context) string         { return v.desc }
func (v stringCheck) MarkdownDescription(context.Context) string { return v.desc }

func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+attrName(req.Path.String()), err.Error())
	}
}

func attrName(p string) string { return strings.ReplaceAll(p, "_", " ") }

// userIDValidator: present, at most 254 bytes, UTF-8, no control characters.
func userIDValidator() validator.String {
	return stringCheck{desc: "a non-empty user id of at most 254 bytes without control characters", check: session.CheckUserID}
}

// quantityValidator: a positive Kubernetes quantity such as "5Gi" or "250m".
func quantityValidator(field string) validator.String {
	return stringCheck{
		desc: "a positive Kubernetes quantity such as \"5Gi\" or \"250m\"",
		check: func(s string) error {
			if s != strings.TrimSpace(s) {
				return fmt.Errorf("%s %q has surrounding spaces", field, s)
			}
			_, err := session.ParseQuantity(field, s)
			return err
		},
	}
}

// imageValidator: a container image reference.
func imageValidator() validator.String {
	return stringCheck{desc: "a container image reference", check: func(s string) error { return session.CheckImage("image", s) }}
}

// idleTimeoutValidator: a non-negative Go duration, 0 (never sleep) or at least a minute (the
// idle sweep runs every minute): the rule the session core applies.
func idleTimeoutValidator() validator.String {
	return durationValidator("idle_timeout", "a duration such as \"15m\" or \"1h30m\": 0 (never sleep) or at least 1m", session.CheckIdleTimeout)
}

// idleConnectedMaxValidator: a non-negative Go duration, 0 (no cap) or at least a minute; the
// comparison with idle_timeout is the resource's ValidateConfig (and the core's).
func idleConnectedMaxValidator() validator.String {
	return durationValidator("idle_connected_max", "a duration such as \"2h\": 0 (no cap) or at least 1m and at least idle_timeout", session.CheckIdleConnectedMax)
}

// ttlValidator: a non-negative Go duration, 0 (never expires) or at least an hour: the rule
// the session core applies.
func ttlValidator() validator.String {
	return durationValidator("ttl", "a duration such as \"72h\": 0 (never expires) or at least 1h", session.CheckTTL)
}

// durationValidator: a duration attribute that parses and passes the session core's check.
func durationValidator(attr, desc string, check func(session.Duration) error) validator.String {
	return stringCheck{desc: desc, check: func(s string) error {
		d, err := session.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%s: %w", attr, err)
		}
		return check(d)
	}}
}

// labelsValidator: Kubernetes label syntax, at most 32 labels, none under a reserved prefix.
type labelsValidator struct{}

func (labelsValidator) Description(context.Context) string {
	return "Kubernetes labels, at most 32, none under hyperbola.dev/, app.kubernetes.io/, kubernetes.io/ or k8s.io/"
}
func (v labelsValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (labelsValidator) ValidateMap(ctx context.Context, req validator.MapRequest, resp *validator.MapResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	labels := map[string]string{}
	for k, v := range req.ConfigValue.Elements() {
		if v.IsUnknown() {
			return
		}
		s, ok := v.(interface{ ValueString() string })
		if !ok {
			return
		}
		labels[k] = s.ValueString()
	}
	if err := session.CheckLabels(labels); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid labels", err.Error())
	}
}

// restoreFromValidator: what a create's restore_from may name, by its shape: a backup location
// (pvc://<volume>/<session id>/<backup id>.zip), a backup id ("<session id>-<UTC time>") or a
// deleted workspace's id. Whether the archive exists, is the user's and reads through is the
// session core's to say, at apply.
func restoreFromValidator() validator.String {
	return stringCheck{
		desc:  "a backup location (`pvc://<volume>/<session id>/<backup id>.zip`), a backup id such as `ab12cd34-20261126T020304Z`, or a deleted workspace's id",
		check: checkRestoreFrom,
	}
}

func checkRestoreFrom(ref string) error {
	switch {
	case ref != strings.TrimSpace(ref):
		return fmt.Errorf("restore_from %q has surrounding spaces", ref)
	case strings.HasPrefix(ref, "pvc://"):
		if session.BackupIDOf(ref) == "" {
			return fmt.Errorf("restore_from %q is not a backup location: pvc://<volume>/<session id>/<backup id>.zip, "+
				"as the hyperbola_backups data source lists them", ref)
		}
	case session.CheckBackupID(ref) == nil, session.ValidID(ref):
	default:
		return fmt.Errorf("restore_from %q is not a backup location, a backup id (such as \"ab12cd34-20261126T020304Z\") "+
			"or a workspace id (8 characters of [a-z0-9], starting with a letter)", ref)
	}
	return nil
}
