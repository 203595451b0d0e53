# One VPC with two subnets in one region:
#   - "nodes": GKE nodes (primary range) with secondary ranges for Pods and Services
#     (VPC-native cluster). Its nodes have no external IP, so Cloud NAT gives them egress
#     (image pulls from Docker Hub, ACME HTTP-01 self checks, workspace internet access).
#   - "serverless": the addresses Cloud Run takes for Direct VPC egress, used to reach
#     Memorystore and the GKE control plane's private endpoint. Google recommends keeping
#     Cloud NAT off subnets that Cloud Run uses with private-ranges-only egress, so it is
#     not in the NAT's list.
#
# With nat_ip_count > 0 the NAT uses that many reserved addresses (MANUAL_ONLY) instead of
# automatically allocated ones, so the cluster's public egress is known in advance (output
# nat_ips) and stays the same: the control plane trusts it as a proxy hop (the activator's
# per-IP limits), and third parties can allow-list it. Traffic from the nodes to Google APIs
# and services (run.app included) does not go through the NAT: with Private Google Access on
# the subnet it keeps its internal source address (the node's, after GKE's default SNAT).

resource "google_compute_network" "this" {
  project                 = var.project_id
  name                    = var.name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
  description             = "Hyperbola VPC: GKE nodes, Cloud Run Direct VPC egress, Memorystore peering."
}

resource "google_compute_subnetwork" "nodes" {
  project                  = var.project_id
  name                     = "${var.name}-nodes"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.nodes_cidr
  private_ip_google_access = true
  description              = "GKE nodes; secondary ranges for Pods and Services."

  secondary_ip_range {
    range_name    = var.pods_range_name
    ip_cidr_range = var.pods_cidr
  }

  secondary_ip_range {
    range_name    = var.services_range_name
    ip_cidr_range = var.services_cidr
  }
}

resource "google_compute_subnetwork" "serverless" {
  project                  = var.project_id
  name                     = "${var.name}-serverless"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.serverless_cidr
  private_ip_google_access = true
  description              = "Cloud Run Direct VPC egress (session-api, idle-sweep)."
}

resource "google_compute_router" "this" {
  project = var.project_id
  name    = "${var.name}-router"
  region  = var.region
  network = google_compute_network.this.id
}

resource "google_compute_address" "nat" {
  count = var.nat_ip_count

  project      = var.project_id
  name         = "${var.name}-nat-${count.index}"
  region       = var.region
  address_type = "EXTERNAL"
  network_tier = "PREMIUM"
  description  = "Cloud NAT egress of the GKE nodes (${var.name}-nat)."
}

resource "google_compute_router_nat" "this" {
  project                            = var.project_id
  name                               = "${var.name}-nat"
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = var.nat_ip_count > 0 ? "MANUAL_ONLY" : "AUTO_ONLY"
  nat_ips                            = google_compute_address.nat[*].self_link
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.nodes.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# The sweep's idle probe (HYPERBOLA_PROBE_SOURCE_CIDRS) asks code-server's /healthz at the
# pod's IP from Cloud Run's Direct VPC egress, so it does not depend on the workspace's
# certificate. This lets the serverless subnet reach the Pods range on the workspace port and
# nothing else; each workspace's NetworkPolicy admits the same subnet on the same port.
resource "google_compute_firewall" "probe" {
  project            = var.project_id
  name               = "${var.name}-serverless-to-workspaces"
  network            = google_compute_network.this.id
  direction          = "INGRESS"
  source_ranges      = [var.serverless_cidr]
  destination_ranges = [var.pods_cidr]
  description        = "The sweep's idle probe: Cloud Run Direct VPC egress to workspace pods, on the workspace port only."

  allow {
    protocol = "tcp"
    ports    = [tostring(var.workspace_port)]
  }
}
