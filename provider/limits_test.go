package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// The deployment's limits come back as diagnostics: a maximum on its attribute, naming the
// limit; a quota naming the limit.
func TestWorkspace_LimitDiagnostics(t *testing.T) {
	needTerraform(t)
	c := newCoreWith(t, session.Options{Limits: session.Limits{MaxStorage: "10Gi", MaxSessionsPerUser: 1}})
	if _, err := c.svc.Create(context.Background(), session.CreateRequest{UserID: "dev@example.com"}); err != nil {
		t.Fatal(err)
	}
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(c.spy),
		Steps: []tfresource.TestStep{
			{Config: wsConfig(`  storage = "20Gi"`), ExpectError: words(`storage 20Gi is above this deployment's maximum of 10Gi (max_storage)`)},
			{Config: wsConfig(""), ExpectError: words(`Hyperbola's quota max_sessions_per_user is reached`)},
		},
	})
}

func TestErrorDiagnostic_Limits(t *testing.T) {
	d := errorDiagnostic("Cannot create", &session.Error{Kind: session.KindInvalid, Field: "memory", Limit: session.LimitMaxMemory,
		Message: "memory 32Gi is above this deployment's maximum of 16Gi"}, workspaceFields())
	if a, ok := d.(diag.DiagnosticWithPath); !ok || a.Path().String() != "memory" || !strings.Contains(d.Detail(), "max_memory") {
		t.Errorf("maximum: %#v, want an attribute diagnostic on memory naming max_memory", d)
	}
	d = errorDiagnostic("Cannot wake", session.Quota(session.LimitRunning, "full"), workspaceFields())
	if _, ok := d.(diag.DiagnosticWithPath); ok || !strings.Contains(d.Detail(), "quota max_running is reached") {
		t.Errorf("quota: %#v", d)
	}
	if retryable(session.Quota(session.LimitRunning, "full")) {
		t.Error("a quota is retried")
	}
}
