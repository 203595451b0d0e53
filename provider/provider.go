// Package provider is the Hyperbola Terraform provider: the hyperbola_workspace resource and
// the hyperbola_workspace, hyperbola_workspaces, hyperbola_usage and hyperbola_backups data sources.
//
// The provider holds one session.Manager, built in one of two modes: endpoint mode talks to a
// deployed API through internal/client; direct mode runs the session core (internal/stack) in
// process against a cluster and a Redis. Resources and data sources never know which.
package provider

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Address is the provider's registry address.
const Address = "registry.terraform.io/hyperbola-in/hyperbola"

// Options tunes a provider. The zero value is the provider the binary serves.
type Options struct {
	// OpenDirect builds the in-process Manager of direct mode (default: internal/stack).
	OpenDirect func(ctx context.Context, cfg *config.Config) (session.Manager, io.Closer, error)
	// OpenEndpoint builds the HTTP Manager of endpoint mode (default: internal/client).
	OpenEndpoint func(ctx context.Context, endpoint, apiKey, userAgent string) (session.Manager, error)
	// Opened receives what each Configure opened. The provider binary exits instead of closing
	// (Terraform starts one process per command); tests close them when they end.
	Opened func(io.Closer)
	// LookupEnv reads environment fallbacks (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// PollMin and PollMax bound the interval at which the resource polls a workspace while it
	// waits for it (defaults 250ms and 2s).
	PollMin, PollMax time.Duration
}

func (o *Options) defaults() {
	if o.OpenDirect == nil {
		o.OpenDirect = openDirect
	}
	if o.OpenEndpoint == nil {
		o.OpenEndpoint = openEndpoint
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.PollMin <= 0 {
		o.PollMin = 250 * time.Millisecond
	}
	if o.PollMax < o.PollMin {
		o.PollMax = max(2*time.Second, o.PollMin)
	}
}

// New returns the provider factory that the binary serves.
func New(version string) func() provider.Provider {
	return NewWithOptions(version, Options{})
}

// NewWithOptions returns a provider factory with opts (tests inject their parts here).
func NewWithOptions(version string, opts Options) func() provider.Provider {
	opts.defaults()
	return func() provider.Provider {
		return &hyperbolaProvider{version: version, opts: opts}
	}
}

type hyperbolaProvider struct {
	version string
	opts    Options
}

var (
	_ provider.Provider                   = (*hyperbolaProvider)(nil)
	_ provider.ProviderWithValidateConfig = (*hyperbolaProvider)(nil)
)

// client is what resources and data sources receive from Configure.
type client struct {
	m       session.Manager
	usage   UsageReporter // the usage report (hyperbola_usage), from m
	mode    mode
	pollMin time.Duration
	pollMax time.Duration
}

func (p *hyperbolaProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "hyperbola"
	resp.Version = p.version
}

func (p *hyperbolaProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	attrs := map[string]schema.Attribute{}
	for _, s := range settings() {
		attrs[s.attr] = schema.StringAttribute{
			Optional:            true,
			Sensitive:           s.sensitive,
			MarkdownDescription: s.desc,
		}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "The Hyperbola provider manages on-demand browser VS Code workspaces on Kubernetes.\n\n" +
			"It works in one of two modes, chosen by what is configured:\n\n" +
			"- **endpoint mode** (`endpoint` + `api_key`): through a deployed Hyperbola API;\n" +
			"- **direct mode** (`redis_url`, with `kubeconfig`/`kube_context`, `kube_endpoint` or in-cluster credentials): " +
			"the provider runs Hyperbola's session core itself against the cluster and the Redis, exactly as the API does.\n\n" +
			"Configuring attributes of both modes is an error. When the provider block sets none, the environment decides: " +
			"`HYPERBOLA_ENDPOINT` (with `HYPERBOLA_API_KEY`) or `HYPERBOLA_REDIS_URL`. Every attribute falls back to the environment variable named in its description.",
		Attributes: attrs,
	}
}

// configValues reads every attribute; unknown ones are reported, null ones are "".
func configValues(ctx context.Context, cfg tfsdk.Config) (map[string]string, []string) {
	out := map[string]string{}
	var unknown []string
	for _, s := range settings() {
		var v types.String
		if d := cfg.GetAttribute(ctx, path.Root(s.attr), &v); d.HasError() {
			continue
		}
		switch {
		case v.IsUnknown():
			unknown = append(unknown, s.attr)
		case !v.IsNull():
			out[s.attr] = strings.TrimSpace(v.ValueString())
		}
	}
	return out, unknown
}

func (p *hyperbolaProvider) ValidateConfig(ctx context.Context, req provider.ValidateConfigRequest, resp *provider.ValidateConfigResponse) {
	vals, unknown := configValues(ctx, req.Config)
	if len(unknown) > 0 {
		return // decided at Configure, once known
	}
	cfgEndpoint, cfgDirect := 0, 0
	for a := range vals {
		if modeOf(a) == modeEndpoint {
			cfgEndpoint++
		} else {
			cfgDirect++
		}
	}
	if cfgEndpoint > 0 && cfgDirect > 0 {
		// the same diagnostic as Configure, earlier (terraform validate)
		_, diags := resolve(vals, func(string) (string, bool) { return "", false })
		resp.Diagnostics.Append(diags...)
	}
	for _, a := range []string{"session_ttl", "default_idle_timeout", "default_idle_connected_max"} {
		if v := vals[a]; v != "" {
			if d, err := time.ParseDuration(v); err != nil || d < 0 {
				resp.Diagnostics.AddAttributeError(path.Root(a), "Invalid duration",
					fmt.Sprintf("`%s` must be a non-negative duration such as \"15m\" or \"24h\", not %q.", a, v))
			}
		}
	}
	if v := vals["endpoint"]; v != "" {
		if err := checkEndpoint(v); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid endpoint", err.Error())
		}
	}
}

func modeOf(attr string) mode {
	for _, s := range settings() {
		if s.attr == attr {
			return s.mode
		}
	}
	return ""
}

func (p *hyperbolaProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	vals, unknown := configValues(ctx, req.Config)
	for _, a := range unknown {
		resp.Diagnostics.AddAttributeError(path.Root(a), "Unknown provider setting",
			fmt.Sprintf("`%s` is not known until apply, and the provider needs it to connect. Set it to a known value, or use its environment variable.", a))
	}
	if resp.Diagnostics.HasError() {
		return
	}
	r, diags := resolve(vals, p.opts.LookupEnv)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	c := &client{mode: r.mode, pollMin: p.opts.PollMin, pollMax: p.opts.PollMax}
	switch r.mode {
	case modeEndpoint:
		ua := fmt.Sprintf("terraform-provider-hyperbola/%s (terraform %s)", p.version, req.TerraformVersion)
		m, err := p.opts.OpenEndpoint(ctx, r.values["endpoint"], r.values["api_key"], ua)
		if err != nil {
			resp.Diagnostics.Append(errorDiagnostic("Cannot use the Hyperbola API", err,
				fieldPaths{"endpoint": path.Root("endpoint"), "api_key": path.Root("api_key")}))
			return
		}
		c.m = m
	case modeDirect:
		cfg, err := directConfig(r, p.opts.LookupEnv)
		if err != nil {
			resp.Diagnostics.AddError("Invalid direct mode configuration", err.Error())
			return
		}
		m, closer, err := p.opts.OpenDirect(ctx, cfg)
		if err != nil {
			resp.Diagnostics.AddError("Cannot start Hyperbola's session core (direct mode)", err.Error())
			return
		}
		if closer != nil && p.opts.Opened != nil {
			p.opts.Opened(closer)
		}
		c.m = m
	}
	c.usage = reporterOf(c.m)
	tflog.Debug(ctx, "hyperbola provider configured", map[string]any{"mode": string(r.mode)})
	resp.ResourceData = c
	resp.DataSourceData = c
}

func (p *hyperbolaProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newWorkspaceResource}
}

func (p *hyperbolaProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{newWorkspaceDataSource, newWorkspacesDataSource, newUsageDataSource, newBackupsDataSource}
}

// clientFrom unwraps the provider data handed to a resource or data source.
func clientFrom(data any) (*client, error) {
	if data == nil {
		return nil, nil // not configured yet (validation): nothing to do
	}
	c, ok := data.(*client)
	if !ok {
		return nil, fmt.Errorf("unexpected provider data %T: this is a bug in the provider", data)
	}
	return c, nil
}
