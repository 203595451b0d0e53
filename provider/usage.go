package provider

import (
	"context"

	apiclient "github.com/hyperbola-in/terraform-provider-hyperbola/internal/client"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// UsageReporter reads the usage report (internal/events): *client.Client answers it from the
// API's GET /usage in endpoint mode; direct mode answers it from the stack's Firestore
// recorder (directManager). The hyperbola_usage data source needs nothing else.
type UsageReporter interface {
	Usage(ctx context.Context, q events.UsageQuery) (*events.UsageReport, error)
}

// directManager is direct mode's Manager: the in-process session core, plus the durable
// records it writes to (nil without a Firestore project) for the usage report.
type directManager struct {
	*session.Service
	events *events.Recorder
}

var (
	_ session.Manager = directManager{}
	_ UsageReporter   = directManager{}
	_ UsageReporter   = (*apiclient.Client)(nil) // endpoint mode: GET /usage
)

func (d directManager) Usage(ctx context.Context, q events.UsageQuery) (*events.UsageReport, error) {
	if d.events == nil {
		return nil, session.Unimplemented("the usage report needs durable records, and direct mode keeps them only with a Firestore project: " +
			"set `firestore_project` in the provider block (or GOOGLE_CLOUD_PROJECT)")
	}
	return d.events.Usage(ctx, q) // its errors are the session core's, as the API's are
}

// reporterOf is what the provider reads the usage report with: the Manager itself when it
// reports usage (the API client, directManager), else one that says there is none.
func reporterOf(m session.Manager) UsageReporter {
	if r, ok := m.(UsageReporter); ok {
		return r
	}
	return noUsage{m: m}
}

type noUsage struct{ m session.Manager }

func (n noUsage) Usage(context.Context, events.UsageQuery) (*events.UsageReport, error) {
	return nil, session.Unimplemented("this provider's session manager (%T) has no usage report", n.m)
}
