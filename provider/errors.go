package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	apiclient "github.com/hyperbola-in/terraform-provider-hyperbola/internal/client"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// fieldPaths maps the session core's field names (session.FieldOf) to attribute paths.
type fieldPaths map[string]path.Path

// workspaceFields are the fields a hyperbola_workspace attribute stands for.
func workspaceFields() fieldPaths {
	return fieldPaths{
		"uuid":               path.Root("id"),
		"user_id":            path.Root("user_id"),
		"state":              path.Root("state"),
		"image":              path.Root("image"),
		"storage":            path.Root("storage"),
		"cpu":                path.Root("cpu"),
		"memory":             path.Root("memory"),
		"idle_timeout":       path.Root("idle_timeout"),
		"idle_connected_max": path.Root("idle_connected_max"),
		"backup_on_delete":   path.Root("backup_on_delete"),
		"labels":             path.Root("labels"),
		"ttl":                path.Root("ttl"),
		"restore_from":       path.Root("restore_from"),
	}
}

// errorDiagnostic is the one place where a domain error becomes a Terraform diagnostic. An
// invalid argument that names a field the caller knows is attached to that attribute; every
// other kind gets a summary and advice of its own.
func errorDiagnostic(summary string, err error, fields fieldPaths) diag.Diagnostic {
	detail := err.Error()
	// Before the kinds: an older API's 501 arrives as an internal error.
	if isUnimplemented(err) {
		return diag.NewErrorDiagnostic(summary,
			"This Hyperbola deployment does not provide this (it was set up without the part it needs): "+detail)
	}
	switch session.KindOf(err) {
	case session.KindQuota:
		detail = fmt.Sprintf("Hyperbola's quota %s is reached, so the workspace cannot be created or woken until "+
			"a session is deleted or sleeps (or the deployment raises the quota): %s", session.LimitOf(err), detail)
	case session.KindInvalid:
		if l := session.LimitOf(err); l != "" && !strings.Contains(detail, l) {
			detail = fmt.Sprintf("%s (this deployment's limit %s)", detail, l)
		}
		if f := session.FieldOf(err); f != "" {
			if p, ok := fields[f]; ok {
				return diag.NewAttributeErrorDiagnostic(p, summary, "Hyperbola rejected the value: "+detail)
			}
			detail = fmt.Sprintf("Hyperbola rejected %q: %s", f, detail)
		}
	case session.KindNotFound:
		detail = "The workspace does not exist (it was deleted outside Terraform, or expired): " + detail
	case session.KindConflict:
		detail = "The workspace's current state does not allow this change: " + detail
	case session.KindBusy:
		detail = "Another change to this workspace held its lock until the timeout; retry the apply: " + detail
	case session.KindUnavailable:
		detail = "A dependency of Hyperbola (Redis, the cluster or the API) did not answer until the timeout; retry later: " + detail
	case session.KindBackup:
		detail = "The backup failed, so the workspace's volume was kept: " + detail
	case session.KindRateLimited:
		detail = "Hyperbola rate-limited the provider until the timeout; retry later or raise the API's limits: " + detail
	}
	return diag.NewErrorDiagnostic(summary, detail)
}

// isUnimplemented reports a part this deployment lacks, in either mode: session.KindUnimplemented,
// which the API answers as its 501 and the client reads back.
func isUnimplemented(err error) bool { return apiclient.IsUnimplemented(err) }

// retryable reports kinds that a retry of the same (idempotent) call can get past.
func retryable(err error) bool {
	switch session.KindOf(err) {
	case session.KindBusy, session.KindUnavailable, session.KindRateLimited:
		return true
	}
	return false
}

// retry calls fn until it succeeds, fails for good, or ctx ends (the operation's timeout).
// Every Manager call it wraps is idempotent: Create carries a request id, the transitions are
// no-ops when repeated, and Update sets values.
func retry[T any](ctx context.Context, c *client, what string, fn func(context.Context) (T, error)) (T, error) {
	delay := c.pollMin
	for {
		v, err := fn(ctx)
		if err == nil || !retryable(err) {
			return v, err
		}
		tflog.Debug(ctx, "retrying", map[string]any{"op": what, "error": err.Error(), "in": delay.String()})
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, fmt.Errorf("%s: gave up at the timeout: %w", what, err)
		case <-t.C:
		}
		delay = min(2*delay, c.pollMax)
	}
}

// errTimeout marks a wait that ran out of time.
var errTimeout = errors.New("timed out")
