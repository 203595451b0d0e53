output "name" {
  description = "Cluster name."
  value       = google_container_cluster.this.name
}

output "location" {
  description = "Cluster zone."
  value       = google_container_cluster.this.location
}

output "endpoint" {
  description = "Public endpoint of the control plane (IP, no scheme), used by the operator's kubernetes and helm providers."
  value       = google_container_cluster.this.endpoint
}

output "private_endpoint" {
  description = "Private endpoint of the control plane (IP, no scheme), reached by Cloud Run through Direct VPC egress."
  value       = google_container_cluster.this.private_cluster_config[0].private_endpoint
}

output "ca_certificate" {
  description = "Base64-encoded PEM of the cluster CA."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
}

output "node_service_account_email" {
  description = "Email of the nodes' service account (granted image pulls from the project registry)."
  value       = google_service_account.nodes.email
}

output "node_pool_name" {
  description = "Name of the workspace node pool."
  value       = google_container_node_pool.workspaces.name
}
