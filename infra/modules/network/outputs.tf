output "network_id" {
  description = "ID of the VPC (projects/PROJECT/global/networks/NAME)."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "Name of the VPC."
  value       = google_compute_network.this.name
}

output "nodes_subnet_id" {
  description = "ID of the GKE nodes subnet."
  value       = google_compute_subnetwork.nodes.id
}

output "serverless_subnet_id" {
  description = "ID of the subnet used by Cloud Run Direct VPC egress."
  value       = google_compute_subnetwork.serverless.id
}

output "serverless_subnet_name" {
  description = "Name of the subnet used by Cloud Run Direct VPC egress."
  value       = google_compute_subnetwork.serverless.name
}

output "serverless_cidr" {
  description = "Range of the Cloud Run Direct VPC egress subnet (added to the control plane's authorized networks when those are on)."
  value       = google_compute_subnetwork.serverless.ip_cidr_range
}

output "pods_range_name" {
  description = "Name of the secondary range for Pods."
  value       = var.pods_range_name
}

output "services_range_name" {
  description = "Name of the secondary range for Services."
  value       = var.services_range_name
}

output "nat_name" {
  description = "Name of the Cloud NAT gateway that gives private nodes egress."
  value       = google_compute_router_nat.this.name
}

output "nodes_cidr" {
  description = "Primary range of the nodes subnet: the source of the nodes' traffic to Google APIs and services (Private Google Access), Cloud Run included."
  value       = google_compute_subnetwork.nodes.ip_cidr_range
}

output "nat_ips" {
  description = "Reserved Cloud NAT addresses (the nodes' internet egress); empty when nat_ip_count is 0 (automatic addresses)."
  value       = google_compute_address.nat[*].address
}

output "workspace_port" {
  description = "The workspace port the serverless subnet may reach in the Pods range (the control plane's user_pod_port must be the same)."
  value       = var.workspace_port
}
