package provider

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// Acceptance tests: the machine's terraform against the provider in both modes, on the local
// cluster and redis-server that TestMain starts (TF_ACC=1). Each test gets its own namespace
// and Redis key prefix.
//
//   - direct: the provider block sets kubeconfig, redis_url, redis_prefix and namespace; the
//     provider builds its own session core with internal/stack, as the binary does.
//   - endpoint: the API (internal/api) over a session core on the same parts, served with
//     httptest on 127.0.0.1; the provider block sets endpoint and api_key.
//
// In both, the test keeps a session core of its own (acc.svc) on the same Redis prefix and
// namespace, to act outside Terraform (the idle sweep, an out-of-band delete) and to check
// what Terraform left behind.

var accModes = []mode{modeDirect, modeEndpoint}

type acc struct {
	mode      mode
	kube      *testenv.Kube // the cluster the test's namespace is on
	ns        string
	svc       *session.Service
	store     *store.Store     // the same session core's store (to seed the backup catalog)
	events    *events.Recorder // the test's view of the durable records (accOptions.firestore)
	endpoint  string           // the API's address (endpoint mode)
	provider  string           // the provider block
	factories map[string]func() (tfprotov6.ProviderServer, error)
}

// accOptions vary an acceptance environment.
type accOptions struct {
	// failBackups makes every backup Job of the test's own session core fail (a kwok stage
	// fails pods labelled hyperbola.dev/test-fail=true); endpoint mode only, where the API
	// runs on that core.
	failBackups bool
	// firestore gives the test a Firestore project (on the emulator TestMain starts): the
	// test's session core, the API (endpoint mode) and the provider (direct mode,
	// firestore_project) record into it, and the usage report reads it.
	firestore bool
	// realNode places the workspaces and the backup volume on the real node, with its real
	// workspace and backup images: the test's namespace is on the package's on-demand
	// real-node cluster (testenv.Env.RealNodeNamespace), which runs while a test holds it.
	realNode bool
}

func newAcc(t *testing.T, m mode) *acc { return newAccWith(t, m, accOptions{}) }

func newAccWith(t *testing.T, m mode, o accOptions) *acc {
	t.Helper()
	skipUnlessAcc(t)
	namespace := env.Namespace
	if o.realNode {
		namespace = env.RealNodeNamespace
	}
	kc, ns := namespace(t)
	_, prefix := env.RedisFor(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	backupClass, placement := "", ""
	vars := map[string]string{
		"KUBECONFIG": kc.Kubeconfig, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": portOf(env.Redis.Addr),
		"HYPERBOLA_REDIS_PREFIX": prefix, "HYPERBOLA_NAMESPACE": ns, "HYPERBOLA_DOMAIN": "test.hyperbola.local",
	}
	if o.realNode {
		node := kc.RealNode
		backupClass = node.StorageClass
		for _, set := range realNodePlacement(node) {
			vars[set.env] = set.value
			placement += fmt.Sprintf("  %s = %q\n", set.attr, set.value)
		}
	}
	if err := kc.CreateBackupPVCOn(ctx, ns, "hyperbola-backups", backupClass); err != nil {
		t.Fatal(err)
	}
	project := ""
	if o.firestore {
		project = env.FirestoreProject(t)
		vars["GOOGLE_CLOUD_PROJECT"] = project
	}
	cfg, err := config.FromLookup(envMap(vars))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	parts := stack.Parts{Logger: quiet}
	if o.failBackups {
		parts.KubeOptions = func(k *kube.Options) {
			k.BackupPodLabels = map[string]string{"hyperbola.dev/test-fail": "true"}
		}
	}
	st, err := stack.New(ctx, cfg, parts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	a := &acc{mode: m, kube: kc, ns: ns, svc: st.Service, store: st.Store, events: st.Events}

	var mu sync.Mutex
	var opened []io.Closer
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range opened {
			_ = c.Close()
		}
	})
	opts := Options{
		LookupEnv: envMap(nil), // only the provider block counts
		Opened:    func(c io.Closer) { mu.Lock(); opened = append(opened, c); mu.Unlock() },
		PollMin:   100 * time.Millisecond, PollMax: time.Second,
	}
	switch m {
	case modeDirect:
		a.provider = fmt.Sprintf(`
provider "hyperbola" {
  kubeconfig   = %q
  redis_url    = %q
  redis_prefix = %q
  namespace    = %q
  domain       = "test.hyperbola.local"
%s%s}
`, kc.Kubeconfig, "redis://"+env.Redis.Addr+"/0", prefix, ns, firestoreAttr(project), placement)
	case modeEndpoint:
		deps := api.Deps{Manager: st.Service, Health: st, Logger: quiet}
		if st.Events != nil { // a nil *events.Recorder in the interface would not read as "none"
			deps.Usage = st.Events
		}
		srv := httptest.NewServer(api.New(deps, api.Options{APIKeys: []string{"acc-key"}}))
		t.Cleanup(srv.Close)
		a.endpoint = srv.URL
		a.provider = fmt.Sprintf(`
provider "hyperbola" {
  endpoint = %q
  api_key  = "acc-key"
}
`, srv.URL)
	}
	p := NewWithOptions("acc", opts)
	a.factories = map[string]func() (tfprotov6.ProviderServer, error){"hyperbola": providerserver.NewProtocol6WithError(p())}
	return a
}

// skipUnlessAcc skips an acceptance test without TF_ACC (TestMain then starts no local parts).
func skipUnlessAcc(t *testing.T) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make test does)")
	}
}

// firestoreAttr is the direct-mode provider block's firestore_project line, when there is a project.
func firestoreAttr(project string) string {
	if project == "" {
		return ""
	}
	return fmt.Sprintf("  firestore_project = %q\n", project)
}

func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

func (a *acc) config(attrs string) string {
	return a.provider + fmt.Sprintf(`
resource "hyperbola_workspace" "w" {
  user_id = "acc@example.com"
%s
}
`, attrs)
}

// eachMode runs fn as a subtest per provider mode.
func eachMode(t *testing.T, fn func(t *testing.T, a *acc)) {
	for _, m := range accModes {
		t.Run(string(m), func(t *testing.T) { fn(t, newAcc(t, m)) })
	}
}

// deletedWithBackup checks that Terraform's destroy left workspace *id deleted, backed up.
func (a *acc) deletedWithBackup(id *string) tfresource.TestCheckFunc {
	return func(*terraform.State) error {
		s, err := a.svc.Get(context.Background(), *id)
		if err != nil {
			return fmt.Errorf("workspace %s after destroy: %w", *id, err)
		}
		if s.State != session.StateDeleted || !strings.HasPrefix(s.BackupLocation, "pvc://hyperbola-backups/"+*id+"/") {
			return fmt.Errorf("workspace %s after destroy: state %s, backup %q; want deleted with a backup", *id, s.State, s.BackupLocation)
		}
		return nil
	}
}

// status checks the workspace's status as the session core reports it.
func (a *acc) status(id *string, want session.State) tfresource.TestCheckFunc {
	return func(*terraform.State) error {
		s, err := a.svc.Get(context.Background(), *id)
		if err != nil {
			return err
		}
		if s.State != want {
			return fmt.Errorf("workspace %s is %s, want %s", *id, s.State, want)
		}
		return nil
	}
}

// create → import verify → sleep via state → wake → grow storage → shrink refused at plan →
// data sources → destroy (the backup ran).
func TestAccWorkspace_Lifecycle(t *testing.T) {
	eachMode(t, func(t *testing.T, a *acc) {
		var id string
		base := `
  storage            = "1Gi"
  idle_timeout       = "30m"
  idle_connected_max = "4h"
  labels             = { team = "platform" }
`
		start := time.Now()
		tfresource.Test(t, tfresource.TestCase{
			ProtoV6ProviderFactories: a.factories,
			Steps: []tfresource.TestStep{
				{
					Config: a.config(base),
					Check: tfresource.ComposeAggregateTestCheckFunc(
						captureID(wsName, &id),
						tfresource.TestCheckResourceAttr(wsName, "status", "running"),
						tfresource.TestCheckResourceAttr(wsName, "state", "running"),
						tfresource.TestCheckResourceAttr(wsName, "storage", "1Gi"),
						tfresource.TestCheckResourceAttr(wsName, "idle_timeout", "30m"),
						tfresource.TestCheckResourceAttr(wsName, "idle_connected_max", "4h"),
						tfresource.TestCheckResourceAttr(wsName, "backup_on_delete", "true"),
						tfresource.TestCheckResourceAttr(wsName, "labels.team", "platform"),
						tfresource.TestMatchResourceAttr(wsName, "password", regexp.MustCompile(`^[A-Za-z0-9_-]{24}$`)),
						tfresource.TestMatchResourceAttr(wsName, "workspace_url", regexp.MustCompile(`^https://vs-code-[a-z][a-z0-9]{7}\.test\.hyperbola\.local$`)),
						tfresource.TestCheckResourceAttrSet(wsName, "created_at"),
						a.status(&id, session.StateRunning),
					),
				},
				{
					ResourceName:            wsName,
					ImportState:             true,
					ImportStateVerify:       true,
					ImportStateVerifyIgnore: []string{"password"},
				},
				{
					Config: a.config(base + `  state = "sleeping"`),
					ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
					}},
					Check: tfresource.ComposeAggregateTestCheckFunc(
						tfresource.TestCheckResourceAttr(wsName, "status", "sleeping"),
						a.status(&id, session.StateSleeping),
					),
				},
				{
					Config: a.config(base + `  state = "running"`),
					Check: tfresource.ComposeAggregateTestCheckFunc(
						tfresource.TestCheckResourceAttr(wsName, "status", "running"),
						a.status(&id, session.StateRunning),
					),
				},
				{
					// ttl 0: the workspace never expires, and a longer idle_connected_max, changed in place.
					Config: a.config(strings.Replace(base, `"4h"`, `"3h"`, 1) + `  state = "running"
  ttl   = "0"`),
					ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
					}},
					Check: tfresource.ComposeAggregateTestCheckFunc(
						tfresource.TestCheckResourceAttr(wsName, "ttl", "0"),
						func(*terraform.State) error {
							s, err := a.svc.Get(context.Background(), id)
							if err != nil {
								return fmt.Errorf("workspace %s after ttl = 0: %w", id, err)
							}
							if !s.ExpiresAt.IsZero() || s.IdleConnectedMax.D() != 3*time.Hour {
								return fmt.Errorf("workspace %s after ttl = 0 and idle_connected_max = 3h: %+v: want no expiry, a 3h cap", id, s)
							}
							return nil
						},
					),
				},
				{
					Config: a.config(strings.Replace(base, `"1Gi"`, `"2Gi"`, 1) + `  state = "running"`),
					ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionUpdate),
					}},
					Check: tfresource.ComposeAggregateTestCheckFunc(
						tfresource.TestCheckResourceAttr(wsName, "storage", "2Gi"),
						func(*terraform.State) error {
							s, err := a.svc.Get(context.Background(), id)
							if err != nil {
								return fmt.Errorf("workspace storage after growth: %w", err)
							}
							if s.Storage != "2Gi" {
								return fmt.Errorf("workspace storage after growth: %v", s)
							}
							return nil
						},
					),
				},
				{
					Config:      a.config(base + `  state = "running"`),
					PlanOnly:    true,
					ExpectError: words("Storage cannot shrink"),
				},
				{
					Config: a.config(strings.Replace(base, `"1Gi"`, `"2Gi"`, 1)) + `
data "hyperbola_workspace" "one" {
  id = hyperbola_workspace.w.id
}
data "hyperbola_workspaces" "mine" {
  user_id = "acc@example.com"
  status  = "running"
}
`,
					Check: tfresource.ComposeAggregateTestCheckFunc(
						tfresource.TestCheckResourceAttrPair("data.hyperbola_workspace.one", "workspace_url", wsName, "workspace_url"),
						tfresource.TestCheckResourceAttr("data.hyperbola_workspace.one", "status", "running"),
						tfresource.TestCheckResourceAttr("data.hyperbola_workspace.one", "storage", "2Gi"),
						tfresource.TestCheckResourceAttr("data.hyperbola_workspace.one", "idle_connected_max", "4h"),
						tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.mine", "ids.#", "1"),
						tfresource.TestCheckResourceAttrPair("data.hyperbola_workspaces.mine", "ids.0", wsName, "id"),
					),
				},
			},
			CheckDestroy: a.deletedWithBackup(&id),
		})
		t.Logf("%s: lifecycle took %s", a.mode, time.Since(start).Round(time.Millisecond))
	})
}

// A workspace deleted outside Terraform: Read removes it (with a warning) and the plan
// creates it again.
func TestAccWorkspace_OutOfBandDelete(t *testing.T) {
	eachMode(t, func(t *testing.T, a *acc) {
		var first, second string
		tfresource.Test(t, tfresource.TestCase{
			ProtoV6ProviderFactories: a.factories,
			Steps: []tfresource.TestStep{
				{Config: a.config(""), Check: captureID(wsName, &first)},
				{
					PreConfig: func() {
						if _, err := a.svc.Delete(context.Background(), first, session.DeleteOptions{}); err != nil {
							t.Fatalf("deleting %s out of band: %v", first, err)
						}
					},
					Config:             a.config(""),
					PlanOnly:           true,
					ExpectNonEmptyPlan: true,
				},
				{
					Config: a.config(""),
					ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(wsName, plancheck.ResourceActionCreate),
					}},
					Check: tfresource.ComposeAggregateTestCheckFunc(
						captureID(wsName, &second),
						func(*terraform.State) error {
							if second == first {
								return fmt.Errorf("the workspace was not created again (id %s)", first)
							}
							return nil
						},
						a.status(&second, session.StateRunning),
					),
				},
			},
			CheckDestroy: a.deletedWithBackup(&second),
		})
	})
}

// The idle sweep puts the workspace to sleep: a change only when the configuration pins
// state = "running", and the apply wakes it.
func TestAccWorkspace_SweepDrift(t *testing.T) {
	eachMode(t, func(t *testing.T, a *acc) {
		var id string
		sweep := func() {
			if _, err := a.svc.Sleep(session.WithActor(context.Background(), "sweep"), id); err != nil {
				t.Fatalf("sleeping %s as the sweep would: %v", id, err)
			}
		}
		tfresource.Test(t, tfresource.TestCase{
			ProtoV6ProviderFactories: a.factories,
			Steps: []tfresource.TestStep{
				{Config: a.config(""), Check: captureID(wsName, &id)},
				{PreConfig: sweep, Config: a.config(""), PlanOnly: true}, // unset: no diff
				{Config: a.config(`  state = "running"`), PlanOnly: true, ExpectNonEmptyPlan: true},
				{
					Config: a.config(`  state = "running"`),
					Check: tfresource.ComposeAggregateTestCheckFunc(
						tfresource.TestCheckResourceAttr(wsName, "status", "running"),
						a.status(&id, session.StateRunning),
					),
				},
			},
			CheckDestroy: a.deletedWithBackup(&id),
		})
	})
}

// Bad values fail at plan, naming the attribute, and nothing reaches the session core.
func TestAccWorkspace_PlanTimeErrors(t *testing.T) {
	eachMode(t, func(t *testing.T, a *acc) {
		var steps []tfresource.TestStep
		for _, b := range []struct{ attrs, want string }{
			{`state = "paused"`, `Attribute state value must be one of`},
			{`storage = "5 gigs"`, `storage "5 gigs" is not a quantity`},
			{`idle_timeout = "-1m"`, `idle_timeout: duration "-1m" must not be negative`},
			{`idle_timeout = "a while"`, `idle_timeout: duration "a while": use a form such as`},
			{"idle_timeout = \"1h\"\n  idle_connected_max = \"30m\"", `idle_connected_max (30m0s) must be 0 (no cap) or at least idle_timeout (1h0m0s)`},
		} {
			steps = append(steps, tfresource.TestStep{Config: a.config("  " + b.attrs), PlanOnly: true, ExpectError: words(b.want)})
		}
		steps = append(steps, tfresource.TestStep{
			Config:      a.provider + "resource \"hyperbola_workspace\" \"w\" {\n  user_id = \"\"\n}\n",
			PlanOnly:    true,
			ExpectError: words("user_id is required"),
		})
		tfresource.Test(t, tfresource.TestCase{ProtoV6ProviderFactories: a.factories, Steps: steps})
		page, err := a.svc.List(context.Background(), session.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Sessions) != 0 {
			t.Errorf("%d workspaces were created by plans that should have failed", len(page.Sessions))
		}
	})
}

// A failed backup fails the destroy ("backup failed, volume kept") and keeps the workspace in
// state; with backup_on_delete = false applied, the next destroy deletes it.
func TestAccWorkspace_BackupFailure(t *testing.T) {
	a := newAccWith(t, modeEndpoint, accOptions{failBackups: true})
	var id string
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: a.factories,
		Steps: []tfresource.TestStep{
			{Config: a.config(""), Check: captureID(wsName, &id)},
			{
				Config:      a.provider, // the workspace removed from the configuration: destroy it
				ExpectError: words("Backup failed, volume kept"),
			},
			{
				Config: a.config(`  backup_on_delete = false`),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttr(wsName, "status", "failed"),
					tfresource.TestCheckResourceAttr(wsName, "backup_on_delete", "false"),
					func(*terraform.State) error {
						obs, err := a.kubePVC(id)
						if err != nil {
							return fmt.Errorf("the volume of %s after the failed backup: %w", id, err)
						}
						if !obs {
							return fmt.Errorf("the volume of %s was not kept after the failed backup", id)
						}
						return nil
					},
				),
			},
		},
		CheckDestroy: a.status(&id, session.StateDeleted),
	})
}

// kubePVC reports whether the workspace's volume claim exists.
func (a *acc) kubePVC(id string) (bool, error) {
	_, err := a.kube.Client.CoreV1().PersistentVolumeClaims(a.ns).Get(context.Background(), "vs-code-"+id+"-data", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// The data sources read workspaces made by Terraform and by others, filtered and paged.
func TestAccWorkspaceDataSource_ByIDAndList(t *testing.T) {
	eachMode(t, func(t *testing.T, a *acc) {
		ctx := context.Background()
		// made outside Terraform: one of the same user asleep, one of another user
		other, err := a.svc.Create(ctx, session.CreateRequest{UserID: "acc@example.com", State: session.StateSleeping})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.svc.Create(ctx, session.CreateRequest{UserID: "someone@example.com", Labels: map[string]string{"team": "x"}}); err != nil {
			t.Fatal(err)
		}
		tfresource.Test(t, tfresource.TestCase{
			ProtoV6ProviderFactories: a.factories,
			Steps: []tfresource.TestStep{{
				Config: a.config(`  labels = { team = "platform" }`) + fmt.Sprintf(`
data "hyperbola_workspace" "mine" {
  id = hyperbola_workspace.w.id
}
data "hyperbola_workspace" "other" {
  id = %q
}
data "hyperbola_workspaces" "user" {
  user_id    = "acc@example.com"
  depends_on = [hyperbola_workspace.w]
}
data "hyperbola_workspaces" "user_sleeping" {
  user_id    = "acc@example.com"
  status     = "sleeping"
  depends_on = [hyperbola_workspace.w]
}
data "hyperbola_workspaces" "all" {
  depends_on = [hyperbola_workspace.w]
}
`, other.ID),
				Check: tfresource.ComposeAggregateTestCheckFunc(
					tfresource.TestCheckResourceAttrPair("data.hyperbola_workspace.mine", "workspace_url", wsName, "workspace_url"),
					tfresource.TestCheckResourceAttr("data.hyperbola_workspace.mine", "labels.team", "platform"),
					tfresource.TestCheckResourceAttr("data.hyperbola_workspace.mine", "status", "running"),
					tfresource.TestCheckResourceAttr("data.hyperbola_workspace.other", "status", "sleeping"),
					tfresource.TestCheckResourceAttr("data.hyperbola_workspace.other", "user_id", "acc@example.com"),
					tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.user", "ids.#", "2"),
					tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.user", "ids.0", other.ID),
					tfresource.TestCheckResourceAttrPair("data.hyperbola_workspaces.user", "ids.1", wsName, "id"),
					tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.user_sleeping", "ids.#", "1"),
					tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.user_sleeping", "workspaces.0.id", other.ID),
					tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.all", "ids.#", "3"),
				),
			}},
		})
	})
}
