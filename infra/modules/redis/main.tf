# Memorystore for Redis: session metadata, activity sorted set, locks and rate limits.
# DIRECT_PEERING attaches it to the VPC; Cloud Run reaches it through Direct VPC egress
# (private ranges go through the VPC), GKE does not need it.
#
# AUTH and in-transit encryption stay off: the app reads only REDIS_HOST and REDIS_PORT, and
# the instance has no public address; only resources in this VPC can reach it.
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
}
