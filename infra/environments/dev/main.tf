# Hyperbola in one GCP project: the seed's entry point.
#
#   cd infra/environments/dev
#   terraform init
#   terraform apply -target=module.registry -target=module.cluster_addons.helm_release.cert_manager
#   (build and push the functions image and the backup image; see docs/operations/deploy.md)
#   terraform apply
#
# The first, targeted apply creates the network, the cluster, the registry and cert-manager:
# the ClusterIssuer (kubernetes_manifest) can only be planned once its CRD exists, and the
# Cloud Run services need an image in the registry (and backup Jobs theirs).

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

  # HYPERBOLA_TRUSTED_PROXIES. Cloud Run's front end (169.254.0.0/16, the container's peer)
  # appends the address it was reached from to X-Forwarded-For. A wake-on-access visitor comes
  # through ingress-nginx, which sets X-Forwarded-For to the visitor, so that appended address
  # is the cluster's: the nodes' internal range when the request goes over Private Google Access
  # (on for the nodes subnet; Cloud NAT never translates traffic to Google's service
  # addresses), a NAT address otherwise. Trusting both lets the activator's per-IP limits see
  # the visitor. Only with wake on access: a trusted hop can name any client address, and
  # workspaces leave through the same addresses (docs/operations/operations.md, known limits).
  cluster_egress  = var.wake_on_access ? concat([module.network.nodes_cidr], module.network.nat_ips) : []
  trusted_proxies = distinct(concat(["169.254.0.0/16"], local.cluster_egress, var.extra_trusted_proxies))

  # Bootstrapped by hand (deploy.md) because Terraform needs them to enable the rest:
  # serviceusage.googleapis.com and cloudresourcemanager.googleapis.com.
  services = [
    "artifactregistry.googleapis.com",
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
  dns_managed_zone            = var.dns_managed_zone
  warm_volumes                = var.warm_volumes

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
