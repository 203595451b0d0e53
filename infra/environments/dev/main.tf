# Hyperbola in one GCP project: the seed's entry point.
#
#   cd infra/environments/dev
#   terraform init
#   terraform apply -target=module.registry -target=module.gke                  (routing = gateway)
#   terraform apply -target=module.registry -target=module.cluster_addons.helm_release.cert_manager
#                                                                               (routing = ingress)
#   (build and push the functions image, the backup image and, for gateway, the relay's; see
#   docs/operations/deploy.md)
#   terraform apply
#
# The first, targeted apply creates the network, the cluster (with its Gateway API and GKE's
# policy CRDs in gateway routing) and the registry, or cert-manager: a kubernetes_manifest (the
# relay's HealthCheckPolicy, the ClusterIssuer) can only be planned once its CRD exists, and the
# Cloud Run services need an image in the registry (and backup Jobs and the relay theirs).
# Routing and the migration from ingress to gateway: docs/operations/routing.md.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  labels = merge(var.labels, {
    app         = "hyperbola"
    environment = "dev"
  })

  # Cloud Run's deterministic host for session-api, known before the service exists, so the
  # in-cluster activator Service can name it without waiting for (or cycling with) Cloud Run.
  api_host = "session-api-${data.google_project.this.number}.${var.region}.run.app"

  functions_image = coalesce(var.functions_image, "${module.registry.repository_url}/functions:${var.functions_image_tag}")

  # The images of images/ (infra/cloudbuild/images.yaml pushes both to the registry). The backup
  # image must come from somewhere a node can pull: the app's default names the local
  # cluster's. The workspace image stays the public code-server unless a tag is given.
  backup_image             = coalesce(var.backup_image, "${module.registry.repository_url}/hyperbola-backup:${var.backup_image_tag}")
  registry_workspace_image = var.workspace_image_tag == null ? null : "${module.registry.repository_url}/hyperbola-workspace:${var.workspace_image_tag}"
  workspace_image          = coalesce(var.user_pod_image, local.registry_workspace_image, "docker.io/codercom/code-server:4.96.4")
  relay_image              = coalesce(var.relay_image, "${module.registry.repository_url}/hyperbola-relay:${var.relay_image_tag}")

  # Routing (docs/operations/routing.md). ingress-nginx and cert-manager run in ingress
  # routing, and in gateway routing while both entry points serve (keep_ingress).
  gateway        = var.routing == "gateway"
  enable_ingress = !local.gateway || var.keep_ingress
  # The *.<domain> record stays on ingress-nginx through the migration's first phase until
  # the operator moves it (wildcard_dns_target = "gateway").
  wildcard_dns_target = coalesce(var.wildcard_dns_target, local.gateway && !var.keep_ingress ? "gateway" : "ingress")
  entry_ip            = local.wildcard_dns_target == "gateway" ? one(module.gateway[*].address) : module.cluster_addons.ingress_ip

  # HYPERBOLA_TRUSTED_PROXIES. Cloud Run's front end (169.254.0.0/16, the container's peer)
  # appends the address it was reached from to X-Forwarded-For. A wake-on-access visitor comes
  # through ingress-nginx, which sets X-Forwarded-For to the visitor, so that appended address
  # is the cluster's: the nodes' internal range when the request goes over Private Google Access
  # (on for the nodes subnet; Cloud NAT never translates traffic to Google's service
  # addresses), a NAT address otherwise. Trusting both lets the activator's per-IP limits see
  # the visitor. Only with wake on access: a trusted hop can name any client address, and
  # workspaces leave through the same addresses (docs/operations/operations.md, known limits).
  cluster_egress = var.wake_on_access ? concat([module.network.nodes_cidr], module.network.nat_ips) : []
  # Gateway routing: Google's load balancer appends the client and then its own address (the
  # Gateway's) to X-Forwarded-For, the relay keeps that header, and Cloud Run appends the
  # relay's egress; the Gateway's address is one more trusted hop between them.
  gateway_hops    = var.wake_on_access && local.gateway ? module.gateway[*].address : []
  trusted_proxies = distinct(concat(["169.254.0.0/16"], local.cluster_egress, local.gateway_hops, var.extra_trusted_proxies))

  # Bootstrapped by hand (deploy.md) because Terraform needs them to enable the rest:
  # serviceusage.googleapis.com and cloudresourcemanager.googleapis.com.
  services = [
    "artifactregistry.googleapis.com",
    "certificatemanager.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "dns.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
  ]
}

module "project_services" {
  source = "../../modules/project-services"

  project_id = var.project_id
  services   = local.services
}

module "network" {
  source = "../../modules/network"

  project_id      = var.project_id
  name            = var.name
  region          = var.region
  nodes_cidr      = var.nodes_cidr
  pods_cidr       = var.pods_cidr
  services_cidr   = var.services_cidr
  serverless_cidr = var.serverless_cidr
  nat_ip_count    = var.nat_ip_count

  depends_on = [module.project_services]
}

module "gke" {
  source = "../../modules/gke"

  project_id                 = var.project_id
  name                       = var.name
  location                   = var.zone
  network_id                 = module.network.network_id
  subnetwork_id              = module.network.nodes_subnet_id
  pods_range_name            = module.network.pods_range_name
  services_range_name        = module.network.services_range_name
  serverless_cidr            = module.network.serverless_cidr
  master_ipv4_cidr_block     = var.master_ipv4_cidr_block
  master_authorized_networks = var.master_authorized_networks
  machine_type               = var.node_machine_type
  min_nodes                  = var.node_min_count
  max_nodes                  = var.node_max_count
  enable_filestore_csi       = endswith(var.backup_storage_class, "-rwx")
  gateway_api_channel        = local.gateway ? "CHANNEL_STANDARD" : null
  deletion_protection        = var.deletion_protection
  labels                     = local.labels

  depends_on = [module.project_services]
}

module "registry" {
  source = "../../modules/registry"

  project_id     = var.project_id
  location       = var.region
  reader_members = ["serviceAccount:${module.gke.node_service_account_email}"]
  labels         = local.labels

  depends_on = [module.project_services]
}

module "redis" {
  source = "../../modules/redis"

  project_id     = var.project_id
  name           = "${var.name}-sessions"
  region         = var.region
  network_id     = module.network.network_id
  tier           = var.redis_tier
  memory_size_gb = var.redis_memory_size_gb
  labels         = local.labels

  depends_on = [module.project_services]
}

module "firestore" {
  source = "../../modules/firestore"

  project_id          = var.project_id
  location_id         = coalesce(var.firestore_location, var.region)
  deletion_protection = var.deletion_protection

  depends_on = [module.project_services]
}

module "identities" {
  source = "../../modules/identities"

  project_id = var.project_id
  prefix     = var.name

  depends_on = [module.project_services]
}

# Gateway routing's Google Cloud side: the Gateway's reserved address and its wildcard
# certificate (Certificate Manager, authorized by DNS) in a certificate map.
module "gateway" {
  source = "../../modules/gateway"
  count  = local.gateway ? 1 : 0

  project_id       = var.project_id
  prefix           = var.name
  domain           = var.domain
  gateway_name     = var.gateway_name
  dns_managed_zone = var.dns_managed_zone
  labels           = local.labels

  depends_on = [module.project_services]
}

module "cluster_addons" {
  source = "../../modules/cluster-addons"

  project_id                  = var.project_id
  region                      = var.region
  prefix                      = var.name
  domain                      = var.domain
  namespace                   = var.namespace
  api_service_account_email   = module.identities.api_email
  sweep_service_account_email = module.identities.sweep_email
  ingress_nginx_chart_version = var.ingress_nginx_chart_version
  cert_manager_chart_version  = var.cert_manager_chart_version
  acme_email                  = var.acme_email
  acme_server                 = var.acme_server
  backup_storage_class        = var.backup_storage_class
  backup_volume_size          = var.backup_volume_size
  activator_host              = local.api_host
  activator_ca_bundle         = var.activator_ca_file == null ? null : file(var.activator_ca_file)
  warm_volumes                = var.warm_volumes
  enable_ingress              = local.enable_ingress

  # The relay only carries wake on access: without it nothing routes to the activator.
  enable_relay = local.gateway && var.wake_on_access
  relay_image  = local.gateway && var.wake_on_access ? local.relay_image : null

  # The add-ons need the nodes, not just the control plane.
  depends_on = [module.gke]
}

module "control_plane" {
  source = "../../modules/control-plane"

  project_id                      = var.project_id
  project_number                  = data.google_project.this.number
  region                          = var.region
  prefix                          = var.name
  image                           = local.functions_image
  api_service_account_email       = module.identities.api_email
  sweep_service_account_email     = module.identities.sweep_email
  scheduler_service_account_email = module.identities.scheduler_email
  network_name                    = module.network.network_name
  serverless_subnet_name          = module.network.serverless_subnet_name
  redis_host                      = module.redis.host
  redis_port                      = module.redis.port
  redis_auth_enabled              = module.redis.auth_enabled
  redis_auth_string               = module.redis.auth_string
  redis_tls                       = module.redis.tls
  redis_ca                        = module.redis.ca_pem
  user_pod_port                   = module.network.workspace_port
  probe_source_cidrs              = [module.network.serverless_cidr]
  kube_private_endpoint           = module.gke.private_endpoint
  kube_ca_certificate             = module.gke.ca_certificate
  namespace                       = module.cluster_addons.namespace
  domain                          = var.domain
  storage_class                   = var.workspace_storage_class
  warm_volumes                    = var.warm_volumes
  ingress_class                   = module.cluster_addons.ingress_class_name
  ingress_namespace               = module.cluster_addons.ingress_namespace
  cluster_issuer                  = module.cluster_addons.cluster_issuer_name
  routing                         = var.routing
  keep_ingress                    = local.gateway && var.keep_ingress
  gateway_name                    = var.gateway_name
  gateway_certmap                 = one(module.gateway[*].certificate_map)
  gateway_address                 = one(module.gateway[*].address_name)
  backup_pvc                      = module.cluster_addons.backup_pvc_name
  user_pod_image                  = local.workspace_image
  backup_image                    = local.backup_image
  backup_retention_days           = var.backup_retention_days
  workspace_node_selector         = var.workspace_node_selector
  workspace_tolerations           = var.workspace_tolerations
  session_ttl_seconds             = var.session_ttl_seconds
  api_key_count                   = var.api_key_count
  api_key_roles                   = var.api_key_roles
  api_max_instances               = var.api_max_instances
  wake_on_access                  = var.wake_on_access
  activator_host                  = local.api_host
  activator_service               = module.cluster_addons.activator_service
  activator_ca_secret             = module.cluster_addons.activator_ca_secret
  activity_url                    = var.activity_url
  trusted_proxies                 = local.trusted_proxies
  sweep_probe_url                 = var.sweep_probe_url
  warm_placeholders               = var.warm_placeholders
  warm_prepull                    = var.warm_prepull
  placeholder_priority_class      = module.cluster_addons.placeholder_priority_class
  price_per_hour                  = var.price_per_hour
  storage_price_per_gb_month      = var.storage_price_per_gb_month
  currency                        = var.currency
  extra_env                       = var.extra_env
  deletion_protection             = var.deletion_protection
  labels                          = local.labels

  # Firestore must exist, and the RoleBinding must be in place before the first revision's
  # /ready (startup) probe talks to the cluster.
  depends_on = [module.firestore, module.cluster_addons]
}

# ---------------------------------------------------------------------------------------
# The workspaces' wildcard record, in a Cloud DNS zone of this project (dns_managed_zone);
# without one, create output wildcard_dns_record where the domain's DNS is hosted. It names
# the entry point wildcard_dns_target chooses: the Gateway's global address or ingress-nginx's
# regional one.

moved {
  from = module.cluster_addons.google_dns_record_set.wildcard
  to   = google_dns_record_set.wildcard
}

resource "google_dns_record_set" "wildcard" {
  count = var.dns_managed_zone == null ? 0 : 1

  project      = var.project_id
  managed_zone = var.dns_managed_zone
  name         = "*.${var.domain}."
  type         = "A"
  ttl          = 300
  rrdatas      = [local.entry_ip]

  lifecycle {
    precondition {
      condition     = local.wildcard_dns_target == "gateway" ? local.gateway : local.enable_ingress
      error_message = "wildcard_dns_target names an entry point that is not deployed: gateway needs routing = gateway, ingress needs routing = ingress or keep_ingress = true."
    }
  }
}
