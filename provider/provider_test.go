package provider

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// env holds the local cluster and redis-server of the acceptance tests (TF_ACC=1 only).
var env *testenv.Env

func TestMain(m *testing.M) {
	// terraform-plugin-testing runs the machine's terraform, never a downloaded one: point it
	// at the one on PATH when the Makefile has not, and keep it from phoning home.
	if os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		if p, err := exec.LookPath("terraform"); err == nil {
			_ = os.Setenv("TF_ACC_TERRAFORM_PATH", p)
		}
	}
	_ = os.Setenv("CHECKPOINT_DISABLE", "1")
	if os.Getenv("TF_ACC") == "" {
		// unit tests only: the resource.UnitTest ones run terraform against the session core on
		// in-memory ports (sessiontest)
		flag.Parse()
		os.Exit(m.Run())
	}
	// Firestore: the durable records that hyperbola_usage reads (tests that want them ask
	// accOptions.firestore for a project of their own). The real node: on demand, for the
	// tests that ask accOptions.realNode (TestAccWorkspaceResource_RestoreFromBackup), so the
	// package holds the machine's one real node only while they run, and not at all in a run
	// (-run) without them.
	testenv.Main(m, &env, testenv.Options{Cluster: true, Redis: true, Firestore: true, RealNodeOnDemand: true})
}

// needTerraform skips a unit test that runs terraform when there is none.
func needTerraform(t *testing.T) {
	t.Helper()
	if os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		t.Skip("terraform is not on PATH")
	}
}

// fakeFactories serves a provider in endpoint mode whose Manager is f (the Spy of a core).
func fakeFactories(f session.Manager) map[string]func() (tfprotov6.ProviderServer, error) {
	p := NewWithOptions("test", Options{
		OpenEndpoint: func(context.Context, string, string, string) (session.Manager, error) { return f, nil },
		OpenDirect: func(context.Context, *config.Config) (session.Manager, io.Closer, error) {
			return nil, nil, fmt.Errorf("direct mode is not used by the fake tests")
		},
		LookupEnv: func(string) (string, bool) { return "", false },
		PollMin:   time.Millisecond, PollMax: 5 * time.Millisecond,
	})
	return map[string]func() (tfprotov6.ProviderServer, error){
		"hyperbola": providerserver.NewProtocol6WithError(p()),
	}
}

// fakeProviderBlock configures the fake (endpoint mode, nothing is contacted).
const fakeProviderBlock = `
provider "hyperbola" {
  endpoint = "http://hyperbola.invalid"
  api_key  = "test"
}
`

// words matches the words of s separated by any white space: terraform wraps long
// diagnostics, so a phrase may span lines.
func words(s string) *regexp.Regexp {
	parts := strings.Fields(s)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(strings.Join(parts, `\s+`))
}

// captureID stores the id of resource name into *id.
func captureID(name string, id *string) func(*terraform.State) error {
	return captureAttr(name, "id", id)
}

// captureAttr stores attribute attr of resource name into *v.
func captureAttr(name, attr string, v *string) func(*terraform.State) error {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[name]
		if !ok {
			return fmt.Errorf("%s not in state", name)
		}
		*v = rs.Primary.Attributes[attr]
		return nil
	}
}
