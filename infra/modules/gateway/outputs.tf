output "address" {
  description = "The reserved global IPv4 address of the Gateway: *.<domain> must resolve to it."
  value       = google_compute_global_address.gateway.address
}

output "address_name" {
  description = "Name of the reserved global address (HYPERBOLA_GATEWAY_ADDRESS, a NamedAddress on the Gateway)."
  value       = google_compute_global_address.gateway.name
}

output "certificate_map" {
  description = "Name of the certificate map (HYPERBOLA_GATEWAY_CERTMAP, the Gateway's networking.gke.io/certmap annotation)."
  value       = google_certificate_manager_certificate_map.gateway.name
}

output "certificate" {
  description = "Name of the wildcard certificate (gcloud certificate-manager certificates describe NAME shows its state)."
  value       = google_certificate_manager_certificate.wildcard.name
}

output "dns_authorization_record" {
  description = "The DNS authorization's record (created here with dns_managed_zone): the certificate is issued once it resolves."
  value = format("%s %d IN %s %s",
    google_certificate_manager_dns_authorization.domain.dns_resource_record[0].name, 300,
    google_certificate_manager_dns_authorization.domain.dns_resource_record[0].type,
    google_certificate_manager_dns_authorization.domain.dns_resource_record[0].data,
  )
}
