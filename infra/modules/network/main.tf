# One VPC with two subnets in one region:
#   - "nodes": GKE nodes (primary range) with secondary ranges for Pods and Services
#     (VPC-native cluster). Its nodes have no external IP, so Cloud NAT gives them egress
#     (image pulls from Docker Hub, ACME HTTP-01 self checks, workspace internet access).
#   - "serverless": the addresses Cloud Run takes for Direct VPC egress, used to reach
#     Memorystore and the GKE control plane's private endpoint. Google recommends keeping
#     Cloud NAT off subnets that Cloud Run uses with private-ranges-only egress, so it is
#     not in the NAT's list.

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

resource "google_compute_router_nat" "this" {
  project                            = var.project_id
  name                               = "${var.name}-nat"
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
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
