# Memorystore for Redis: session metadata, activity sorted set, locks and rate limits.
# DIRECT_PEERING attaches it to the VPC; Cloud Run reaches it through Direct VPC egress
# (private ranges go through the VPC), GKE does not need it.
#
# AUTH and in-transit encryption are on: the instance has no public address, but anything in
# the VPC could otherwise read and rewrite every session (a workspace whose NetworkPolicy is
# missing, a VM). The AUTH string (output auth_string) goes to the control plane through
# Secret Manager (REDIS_PASSWORD); the server's CAs (output ca_pem) are HYPERBOLA_REDIS_CA,
# which turns the app's TLS on and verifies the server against them. With in-transit
# encryption the instance listens on 6378 (output port). Turning either on for an existing
# instance replaces it: its data is lost and rebuilt (DESIGN.md: from Kubernetes and Firestore).
# BASIC has no replica (a restart loses the data; DESIGN.md lets the control plane rebuild
# the session list from Kubernetes and Firestore). STANDARD_HA adds a replica and failover.
resource "google_redis_instance" "this" {
  project            = var.project_id
  name               = var.name
  display_name       = "Hyperbola session store"
  region             = var.region
  tier               = var.tier
  memory_size_gb     = var.memory_size_gb
  redis_version      = var.redis_version
  authorized_network = var.network_id
  connect_mode       = "DIRECT_PEERING"
  labels             = var.labels

  auth_enabled            = local.auth_enabled
  transit_encryption_mode = local.tls ? "SERVER_AUTHENTICATION" : "DISABLED"
}

# Constants, output as such so the control plane can plan its secrets and settings before the
# instance (and its AUTH string and CA) exists.
locals {
  auth_enabled = true
  tls          = true
}
