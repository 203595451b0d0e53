# One Google service account per caller, so each gets only what it needs:
#   api       runs Cloud Run session-api
#   sweep     runs Cloud Run idle-sweep
#   scheduler signs the OIDC token Cloud Scheduler sends to idle-sweep; it can do nothing else
#
# Project-level roles here are the ones that cannot be scoped to a single resource:
#   roles/datastore.user          Firestore reads/writes (records, events, usage)
#   roles/container.clusterViewer container.clusters.get/list: enough to authenticate to GKE.
#                                 Everything the identity may do inside the cluster comes
#                                 from the namespaced RoleBinding in cluster-addons, never
#                                 from IAM (no container.developer/admin).
# Per-resource grants (its own secret, run.invoker on idle-sweep) are made beside those
# resources in control-plane.

locals {
  workloads = {
    api = {
      account_id   = "${var.prefix}-api"
      display_name = "Hyperbola session-api (Cloud Run)"
    }
    sweep = {
      account_id   = "${var.prefix}-sweep"
      display_name = "Hyperbola idle-sweep (Cloud Run)"
    }
  }

  workload_roles = ["roles/datastore.user", "roles/container.clusterViewer"]

  workload_grants = {
    for pair in setproduct(keys(local.workloads), local.workload_roles) :
    "${pair[0]} ${pair[1]}" => { workload = pair[0], role = pair[1] }
  }
}

resource "google_service_account" "workload" {
  for_each = local.workloads

  project      = var.project_id
  account_id   = each.value.account_id
  display_name = each.value.display_name
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.prefix}-scheduler"
  display_name = "Hyperbola Cloud Scheduler caller"
  description  = "Identity in the OIDC token Cloud Scheduler sends to idle-sweep; holds run.invoker on idle-sweep only."
}

resource "google_project_iam_member" "workload" {
  for_each = local.workload_grants

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.workload[each.value.workload].email}"
}
