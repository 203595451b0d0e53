output "ingress_ip" {
  description = "External IP of ingress-nginx, or null without it (enable_ingress false)."
  value       = var.enable_ingress ? google_compute_address.ingress[0].address : null
}

output "namespace" {
  description = "Namespace of the workspaces (HYPERBOLA_NAMESPACE)."
  value       = kubernetes_namespace_v1.workspaces.metadata[0].name
}

output "ingress_namespace" {
  description = "Namespace of the ingress controller (source of the traffic workspace NetworkPolicies admit), or null without it."
  value       = var.enable_ingress ? helm_release.ingress_nginx[0].namespace : null
}

output "ingress_class_name" {
  description = "IngressClass of the workspace Ingresses (HYPERBOLA_INGRESS_CLASS), or null without ingress-nginx."
  value       = var.enable_ingress ? var.ingress_class_name : null
}

output "cluster_issuer_name" {
  description = "ClusterIssuer named by the workspace Ingresses (HYPERBOLA_CLUSTER_ISSUER), or null without cert-manager."
  value       = var.enable_ingress ? kubernetes_manifest.cluster_issuer[0].manifest.metadata.name : null
}

output "backup_pvc_name" {
  description = "Name of the backup PVC (HYPERBOLA_BACKUP_PVC)."
  value       = kubernetes_persistent_volume_claim_v1.backups.metadata[0].name
}

output "backup_access_mode" {
  description = "Access mode of the backup PVC (ReadWriteOnce for a persistent disk, ReadWriteMany for Filestore)."
  value       = local.backup_access_mode
}

output "activator_service" {
  description = "Name of the Service that reaches session-api (ExternalName, or the relay's), or null."
  value       = var.create_activator_service ? kubernetes_service_v1.activator[0].metadata[0].name : null
}

output "control_plane_role" {
  description = "Name of the namespaced Role bound to the control plane's service accounts."
  value       = kubernetes_role_v1.control_plane.metadata[0].name
}

output "activator_ca_secret" {
  description = "Name of the Secret with the activator's CAs (HYPERBOLA_ACTIVATOR_CA_SECRET), or null when the activator's Service is not created."
  value       = var.create_activator_service ? kubernetes_secret_v1.activator_ca[0].metadata[0].name : null
}

output "placeholder_priority_class" {
  description = "Name of the warm path's placeholders' PriorityClass (HYPERBOLA_PLACEHOLDER_PRIORITY_CLASS)."
  value       = kubernetes_priority_class_v1.placeholder.metadata[0].name
}

output "relay_deployment" {
  description = "Name of the activator relay's Deployment (gateway routing), or null."
  value       = local.relay ? kubernetes_deployment_v1.relay[0].metadata[0].name : null
}
