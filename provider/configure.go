package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

// configured is embedded by the resource and every data source: it holds the provider's client
// and takes it in Configure.
type configured struct{ c *client }

// take sets the client from the provider data (nil before the provider is configured).
func (x *configured) take(data any, diags *diag.Diagnostics) {
	c, err := clientFrom(data)
	if err != nil {
		diags.AddError("Provider not configured", err.Error())
		return
	}
	x.c = c
}

// configuredDataSource is configured, for data sources.
type configuredDataSource struct{ configured }

func (x *configuredDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	x.take(req.ProviderData, &resp.Diagnostics)
}

// configuredResource is configured, for resources.
type configuredResource struct{ configured }

func (x *configuredResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	x.take(req.ProviderData, &resp.Diagnostics)
}
