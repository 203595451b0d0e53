# A zonal, VPC-native GKE Standard cluster with private nodes, Workload Identity, Dataplane V2
# (which enforces the NetworkPolicy every workspace gets) and one autoscaling node pool for
# workspaces.
#
# Zonal on purpose: a workspace's PVC is a zonal persistent disk and so is the shared backup
# volume (see cluster-addons). In one zone a backup Job can always mount both; in a regional
# cluster a workspace whose disk is in zone b could never be backed up to a disk in zone a.
#
# The control plane keeps its public endpoint (so the operator's Terraform can install the
# add-ons and kubectl works) and also has a private endpoint in master_ipv4_cidr_block, which
# Cloud Run reaches through Direct VPC egress; that private endpoint is what the API is
# configured with (HYPERBOLA_KUBE_ENDPOINT).

locals {
  # Authorized networks, when the operator lists any: theirs plus Cloud Run's egress subnet,
  # without which the API could not reach the private endpoint.
  authorized_networks = length(var.master_authorized_networks) == 0 ? [] : concat(
    var.master_authorized_networks,
    [{ cidr_block = var.serverless_cidr, display_name = "cloud-run-direct-vpc-egress" }],
  )
}

resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = "${var.name}-nodes"
  display_name = "GKE nodes of ${var.name}"
  description  = "Least-privilege node identity (logs, metrics, image pulls); not the default Compute Engine account."
}

resource "google_project_iam_member" "nodes" {
  project = var.project_id
  role    = "roles/container.defaultNodeServiceAccount"
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "this" {
  project  = var.project_id
  name     = var.name
  location = var.location

  network         = var.network_id
  subnetwork      = var.subnetwork_id
  networking_mode = "VPC_NATIVE"

  # Dataplane V2 (Cilium) enforces NetworkPolicy; without an enforcer the workspaces'
  # policies (no metadata server, ingress only from the ingress controller) would be no-ops.
  datapath_provider = "ADVANCED_DATAPATH"

  # Node pools are managed below; the default pool only exists while the cluster is created.
  remove_default_node_pool = true
  initial_node_count       = 1

  default_max_pods_per_node = var.max_pods_per_node
  deletion_protection       = var.deletion_protection
  resource_labels           = var.labels

  release_channel {
    channel = var.release_channel
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = var.pods_range_name
    services_secondary_range_name = var.services_range_name
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = var.master_ipv4_cidr_block
  }

  dynamic "master_authorized_networks_config" {
    for_each = length(local.authorized_networks) > 0 ? [1] : []
    content {
      dynamic "cidr_blocks" {
        for_each = local.authorized_networks
        content {
          cidr_block   = cidr_blocks.value.cidr_block
          display_name = cidr_blocks.value.display_name
        }
      }
    }
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  # GKE's managed Gateway controller and the Gateway API's standard-channel CRDs (Gateway,
  # HTTPRoute), with GKE's own policies (HealthCheckPolicy, GCPBackendPolicy), for gateway
  # routing (docs/operations/routing.md). Without it the block is left out: an existing
  # cluster keeps whatever it has, and enabling it later is an in-place update.
  dynamic "gateway_api_config" {
    for_each = var.gateway_api_channel == null ? [] : [var.gateway_api_channel]
    content {
      channel = gateway_api_config.value
    }
  }

  addons_config {
    gce_persistent_disk_csi_driver_config {
      enabled = true
    }

    # Only needed when the backup volume uses a Filestore (ReadWriteMany) storage class.
    gcp_filestore_csi_driver_config {
      enabled = var.enable_filestore_csi
    }
  }

  # Used only by the short-lived default pool that remove_default_node_pool deletes; set so
  # that it does not need the default Compute Engine service account.
  node_config {
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  lifecycle {
    # The default pool is gone after creation; changes here would only force a new cluster.
    ignore_changes = [node_config, initial_node_count]
  }

  depends_on = [google_project_iam_member.nodes]
}

# Workspaces request 250m CPU / 256Mi each. On the default e2-standard-4 (4 vCPU, 16 GiB),
# GKE leaves about 3.9 CPU allocatable; system daemons (Dataplane V2, logging, metrics, CSI)
# and the add-ons take roughly 0.5-0.8 of it, so a node fits 12-13 workspaces by request and
# the seed's 8-10 per node leaves headroom for code-server bursting above its request.
# Memory is never the limit (10 x 256Mi). The autoscaler adds a node when a workspace is
# Pending and removes empty ones; sleeping workspaces (0 replicas) cost only their disks.
resource "google_container_node_pool" "workspaces" {
  project  = var.project_id
  name     = "workspaces"
  location = var.location
  cluster  = google_container_cluster.this.name

  initial_node_count = var.min_nodes
  max_pods_per_node  = var.max_pods_per_node

  autoscaling {
    total_min_node_count = var.min_nodes
    total_max_node_count = var.max_nodes
    location_policy      = "BALANCED"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type    = var.machine_type
    disk_type       = "pd-balanced"
    disk_size_gb    = var.node_disk_size_gb
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    tags            = [var.node_tag]
    resource_labels = var.labels

    labels = {
      "hyperbola.dev/pool" = "workspaces"
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }

  lifecycle {
    # The autoscaler owns the node count after creation.
    ignore_changes = [initial_node_count]
  }
}

# Private clusters only let the control plane reach nodes on 443 and 10250. The ingress-nginx
# admission webhook listens on 8443, so without this rule every Ingress the API creates would
# time out in admission. (cert-manager's webhook uses 10250, already allowed.)
resource "google_compute_firewall" "webhooks" {
  project     = var.project_id
  name        = "${var.name}-control-plane-webhooks"
  network     = var.network_id
  direction   = "INGRESS"
  description = "GKE control plane to admission webhooks on the nodes (ingress-nginx: 8443)."

  source_ranges = [var.master_ipv4_cidr_block]
  target_tags   = [var.node_tag]

  allow {
    protocol = "tcp"
    ports    = ["8443"]
  }
}
