package provider

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func diagText(d diag.Diagnostics) string {
	var b strings.Builder
	for _, x := range d {
		b.WriteString(x.Summary() + ": " + x.Detail() + "\n")
		if p, ok := x.(diag.DiagnosticWithPath); ok {
			b.WriteString("  at " + p.Path().String() + "\n")
		}
	}
	return b.String()
}

func TestResolveModes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     map[string]string
		env     map[string]string
		mode    mode
		errLike []string // substrings of the diagnostics; none means no error
	}{
		{name: "endpoint in config", cfg: map[string]string{"endpoint": "http://127.0.0.1:8080", "api_key": "k"}, mode: modeEndpoint},
		{name: "direct in config", cfg: map[string]string{"redis_url": "redis://127.0.0.1:6379", "kubeconfig": "/k"}, mode: modeDirect},
		{name: "endpoint from env", env: map[string]string{"HYPERBOLA_ENDPOINT": "https://api.x", "HYPERBOLA_API_KEY": "k", "KUBECONFIG": "/home/k"}, mode: modeEndpoint},
		{name: "direct from env", env: map[string]string{"HYPERBOLA_REDIS_URL": "redis://r:6379/2", "KUBECONFIG": "/home/k"}, mode: modeDirect},
		{name: "config beats env", cfg: map[string]string{"redis_url": "redis://r:6379"}, env: map[string]string{"HYPERBOLA_ENDPOINT": "https://api.x"}, mode: modeDirect},
		{name: "api key from env", cfg: map[string]string{"endpoint": "https://api.x"}, env: map[string]string{"HYPERBOLA_API_KEY": "k"}, mode: modeEndpoint},
		{name: "neither", env: map[string]string{"KUBECONFIG": "/home/k"}, errLike: []string{"No provider mode is configured", "`endpoint`", "`redis_url`"}},
		{name: "both in config", cfg: map[string]string{"endpoint": "https://api.x", "kubeconfig": "/k"},
			errLike: []string{"Both provider modes are configured", "`endpoint`", "`kubeconfig`"}},
		{name: "both in env", env: map[string]string{"HYPERBOLA_ENDPOINT": "https://api.x", "HYPERBOLA_REDIS_URL": "redis://r"},
			errLike: []string{"Both provider modes are configured", "HYPERBOLA_ENDPOINT", "HYPERBOLA_REDIS_URL"}},
		{name: "endpoint without key", cfg: map[string]string{"endpoint": "https://api.x"}, errLike: []string{"Missing API key", "at api_key"}},
		{name: "bad endpoint", cfg: map[string]string{"endpoint": "api.x", "api_key": "k"}, errLike: []string{"Invalid endpoint", "at endpoint"}},
		{name: "direct without redis", cfg: map[string]string{"namespace": "ws"}, errLike: []string{"Missing Redis URL", "at redis_url", "`namespace`"}},
		{name: "bad redis url", cfg: map[string]string{"redis_url": "http://r"}, errLike: []string{"Invalid Redis URL", "at redis_url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, diags := resolve(tc.cfg, envMap(tc.env))
			text := diagText(diags)
			if len(tc.errLike) == 0 {
				if diags.HasError() {
					t.Fatalf("unexpected diagnostics:\n%s", text)
				}
				if r.mode != tc.mode {
					t.Errorf("mode %q, want %q", r.mode, tc.mode)
				}
				return
			}
			if !diags.HasError() {
				t.Fatalf("no error, want %q", tc.errLike)
			}
			for _, s := range tc.errLike {
				if !strings.Contains(text, s) {
					t.Errorf("diagnostics lack %q:\n%s", s, text)
				}
			}
		})
	}
}

func TestDirectConfig(t *testing.T) {
	r, diags := resolve(map[string]string{
		"redis_url": "redis://:s3cret@10.1.2.3:6390/4", "redis_prefix": "t1:", "namespace": "ws", "domain": "dev.example.com",
		"session_ttl": "36h", "default_idle_timeout": "5m", "default_idle_connected_max": "3h", "kube_context": "kind",
	}, envMap(map[string]string{"KUBECONFIG": "/home/k", "REDIS_HOST": "ignored", "USER_POD_IMAGE": "img:1"}))
	if diags.HasError() {
		t.Fatal(diagText(diags))
	}
	cfg, err := directConfig(r, envMap(map[string]string{"KUBECONFIG": "/home/k", "REDIS_HOST": "ignored", "USER_POD_IMAGE": "img:1"}))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{RedisHost: "10.1.2.3", RedisPort: 6390, RedisPassword: "s3cret", RedisDB: 4, RedisPrefix: "t1:",
		Namespace: "ws", Domain: "dev.example.com", SessionTTL: 36 * time.Hour, IdleTimeout: 5 * time.Minute,
		Kubeconfig: "/home/k", KubeContext: "kind", UserPodImage: "img:1"}
	got := config.Config{RedisHost: cfg.RedisHost, RedisPort: cfg.RedisPort, RedisPassword: cfg.RedisPassword, RedisDB: cfg.RedisDB,
		RedisPrefix: cfg.RedisPrefix, Namespace: cfg.Namespace, Domain: cfg.Domain, SessionTTL: cfg.SessionTTL,
		IdleTimeout: cfg.IdleTimeout, Kubeconfig: cfg.Kubeconfig, KubeContext: cfg.KubeContext, UserPodImage: cfg.UserPodImage}
	if got.RedisHost != want.RedisHost || got.RedisPort != want.RedisPort || got.RedisPassword != want.RedisPassword ||
		got.RedisDB != want.RedisDB || got.RedisPrefix != want.RedisPrefix || got.Namespace != want.Namespace ||
		got.Domain != want.Domain || got.SessionTTL != want.SessionTTL || got.IdleTimeout != want.IdleTimeout ||
		got.Kubeconfig != want.Kubeconfig || got.KubeContext != want.KubeContext || got.UserPodImage != want.UserPodImage {
		t.Errorf("config\n got %+v\nwant %+v", got, want)
	}
	if cfg.IdleConnectedMax != 3*time.Hour {
		t.Errorf("default_idle_connected_max: %v, want 3h", cfg.IdleConnectedMax)
	}
	if _, err := directConfig(resolved{mode: modeDirect, values: map[string]string{"redis_url": "rediss://r:6379"}}, envMap(nil)); err == nil {
		t.Error("rediss:// accepted; the control plane has no TLS setting")
	}
}

// Terraform reports a provider configured for neither or both modes, naming the attributes.
func TestProvider_ModeDiagnostics(t *testing.T) {
	needTerraform(t)
	f := newCore(t).spy
	var opened int
	p := NewWithOptions("test", Options{
		OpenEndpoint: func(context.Context, string, string, string) (session.Manager, error) { opened++; return f, nil },
		OpenDirect: func(context.Context, *config.Config) (session.Manager, io.Closer, error) {
			opened++
			return f, nil, nil
		},
		LookupEnv: envMap(nil),
	})
	factories := map[string]func() (tfprotov6.ProviderServer, error){"hyperbola": providerserver.NewProtocol6WithError(p())}
	ds := `
data "hyperbola_workspaces" "all" {}
`
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: factories,
		Steps: []tfresource.TestStep{
			{Config: `provider "hyperbola" {}` + ds, PlanOnly: true, ExpectError: words("No provider mode is configured")},
			{
				Config: `
provider "hyperbola" {
  endpoint   = "http://127.0.0.1:8080"
  api_key    = "k"
  kubeconfig = "/tmp/kubeconfig"
}` + ds,
				PlanOnly:    true,
				ExpectError: words("is configured for endpoint mode (`api_key`, `endpoint`) and for direct mode (`kubeconfig`)"),
			},
			{
				Config: `
provider "hyperbola" {
  namespace = "ws"
}` + ds,
				PlanOnly:    true,
				ExpectError: words("Missing Redis URL"),
			},
		},
	})
	if opened != 0 {
		t.Errorf("a Manager was opened %d times", opened)
	}
}

func TestWorkspaceDataSources(t *testing.T) {
	needTerraform(t)
	c := newCore(t)
	ctx := context.Background()
	var ids []string // oldest first, as the data sources list them
	for _, u := range []string{"a@x", "b@x", "a@x", "a@x"} {
		s, err := c.svc.Create(ctx, session.CreateRequest{UserID: u, Labels: map[string]string{"team": "t"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
		c.Clock.Add(time.Second)
	}
	if _, err := c.svc.Sleep(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: fakeFactories(&pagedManager{Manager: c.spy, page: 2}),
		Steps: []tfresource.TestStep{{
			Config: fakeProviderBlock + `
data "hyperbola_workspaces" "bad" {
  status = "paused"
}`,
			PlanOnly:    true,
			ExpectError: words("Attribute status value must be one of"),
		}, {
			Config: fakeProviderBlock + `
data "hyperbola_workspace" "none" {
  id = "zz000000"
}`,
			ExpectError: words("does not exist"),
		}, {
			Config: fakeProviderBlock + `
data "hyperbola_workspace" "one" {
  id = "` + ids[1] + `"
}
data "hyperbola_workspaces" "all" {}
data "hyperbola_workspaces" "a" {
  user_id = "a@x"
}
data "hyperbola_workspaces" "a_sleeping" {
  user_id = "a@x"
  status  = "sleeping"
}
`,
			Check: tfresource.ComposeAggregateTestCheckFunc(
				tfresource.TestCheckResourceAttr("data.hyperbola_workspace.one", "user_id", "b@x"),
				tfresource.TestCheckResourceAttr("data.hyperbola_workspace.one", "labels.team", "t"),
				tfresource.TestCheckResourceAttr("data.hyperbola_workspace.one", "storage", "5Gi"),
				tfresource.TestCheckResourceAttr("data.hyperbola_workspace.one", "idle_timeout", "15m"),
				tfresource.TestCheckResourceAttr("data.hyperbola_workspace.one", "idle_connected_max", "0s"), // this core sets no cap
				tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.all", "workspaces.0.idle_connected_max", "0s"),
				tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.all", "ids.#", "4"),
				tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.all", "workspaces.#", "4"),
				tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.a", "ids.#", "3"),
				tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.a", "ids.2", ids[3]),
				tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.a_sleeping", "ids.#", "1"),
				tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.a_sleeping", "workspaces.0.id", ids[2]),
				tfresource.TestCheckResourceAttr("data.hyperbola_workspaces.a_sleeping", "workspaces.0.status", "sleeping"),
			),
		}},
	})
	if n := len(c.spy.Calls("List")); n < 4 {
		t.Errorf("list called %d times: the data source did not page", n)
	}
}

// pagedManager answers List with small pages, whatever the limit asked.
type pagedManager struct {
	session.Manager
	page int
}

func (p *pagedManager) List(ctx context.Context, opts session.ListOptions) (*session.ListResult, error) {
	opts.Limit = p.page
	return p.Manager.List(ctx, opts)
}

// firestore_project reaches the control plane's configuration as GOOGLE_CLOUD_PROJECT, falls
// back to that variable, and (like KUBECONFIG) never selects direct mode on its own.
func TestDirectConfig_FirestoreProject(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		env  map[string]string
		want string
	}{
		{name: "attribute", cfg: map[string]string{"redis_url": "redis://r:6379", "firestore_project": "proj-a"}, env: map[string]string{"GOOGLE_CLOUD_PROJECT": "proj-env"}, want: "proj-a"},
		{name: "environment", cfg: map[string]string{"redis_url": "redis://r:6379"}, env: map[string]string{"GOOGLE_CLOUD_PROJECT": "proj-env"}, want: "proj-env"},
		{name: "neither", cfg: map[string]string{"redis_url": "redis://r:6379"}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, diags := resolve(tc.cfg, envMap(tc.env))
			if diags.HasError() {
				t.Fatal(diagText(diags))
			}
			cfg, err := directConfig(r, envMap(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.FirestoreProject != tc.want {
				t.Errorf("FirestoreProject %q, want %q", cfg.FirestoreProject, tc.want)
			}
		})
	}
	if _, diags := resolve(nil, envMap(map[string]string{"GOOGLE_CLOUD_PROJECT": "p"})); !diags.HasError() {
		t.Error("GOOGLE_CLOUD_PROJECT alone selected a mode")
	}
	if _, diags := resolve(map[string]string{"endpoint": "https://api.x", "api_key": "k", "firestore_project": "p"}, envMap(nil)); !diags.HasError() ||
		!strings.Contains(diagText(diags), "`firestore_project`") {
		t.Errorf("firestore_project with endpoint mode: %s", diagText(diags))
	}
}

// node_selector and tolerations reach the control plane's configuration as the functions read
// them (HYPERBOLA_NODE_SELECTOR, HYPERBOLA_TOLERATIONS), in front of the environment.
func TestDirectConfig_Placement(t *testing.T) {
	vals := map[string]string{"redis_url": "redis://127.0.0.1:6379/0",
		"node_selector": "pool=ws", "tolerations": "dedicated=ws:NoSchedule"}
	lookup := envMap(map[string]string{"HYPERBOLA_NODE_SELECTOR": "pool=other", "HYPERBOLA_TOLERATIONS": "x:NoExecute"})
	r, diags := resolve(vals, lookup)
	if diags.HasError() {
		t.Fatal(diagText(diags))
	}
	cfg, err := directConfig(r, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeSelector != "pool=ws" || cfg.Tolerations != "dedicated=ws:NoSchedule" {
		t.Errorf("node selector %q, tolerations %q; want the provider block's", cfg.NodeSelector, cfg.Tolerations)
	}
	r, _ = resolve(map[string]string{"redis_url": "redis://127.0.0.1:6379/0"}, lookup)
	if cfg, err = directConfig(r, lookup); err != nil || cfg.NodeSelector != "pool=other" || cfg.Tolerations != "x:NoExecute" {
		t.Errorf("from the environment: %+v %v", cfg, err)
	}
}
