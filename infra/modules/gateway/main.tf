# The Google Cloud side of gateway routing (docs/operations/routing.md): what GKE's managed
# Gateway (gatewayClass gke-l7-global-external-managed, a global external Application Load
# Balancer) needs from outside the cluster. The Gateway itself, its HTTPRoutes and their
# policies are written by the control plane; the relay to the activator is in cluster-addons.
#
#   - a reserved global address, named on the Gateway (spec.addresses, type NamedAddress), so
#     the workspaces' address survives the Gateway being re-created;
#   - one Google-managed certificate for <domain> and *.<domain>, authorized by DNS (a CNAME
#     under _acme-challenge.<domain>), served through a certificate map that the Gateway names
#     in its networking.gke.io/certmap annotation. One certificate for every workspace: no
#     per-host issuance, no Let's Encrypt weekly limit, nothing pending when a session starts;
#   - with a Cloud DNS zone: the authorization's CNAME. The wildcard A record is the caller's
#     (environments/dev), because during a migration it names the ingress first.
#
# No firewall rule here: GKE's Gateway controller creates the VPC rules that let Google's front
# ends and health checkers (35.191.0.0/16, 130.211.0.0/22) reach the backends' pods. Inside the
# cluster the NetworkPolicies must admit them too (the control plane's for each workspace,
# HYPERBOLA_GATEWAY_SOURCE_CIDRS; cluster-addons' for the relay).

locals {
  # The apex is on the certificate too (the authorization covers both; it costs nothing), so
  # a page at https://<domain> can be served by the same map later.
  certificate_domains = [var.domain, "*.${var.domain}"]
}

resource "google_compute_global_address" "gateway" {
  project      = var.project_id
  name         = "${var.prefix}-gateway"
  address_type = "EXTERNAL"
  ip_version   = "IPV4"
  description  = "GKE Gateway ${var.gateway_name} (HYPERBOLA_GATEWAY_ADDRESS); *.${var.domain} points here."
}

# One authorization covers the domain and its wildcard.
resource "google_certificate_manager_dns_authorization" "domain" {
  project     = var.project_id
  name        = "${var.prefix}-domain"
  domain      = var.domain
  description = "Proves control of ${var.domain} for the workspaces' wildcard certificate."
  labels      = var.labels
}

resource "google_certificate_manager_certificate" "wildcard" {
  project     = var.project_id
  name        = "${var.prefix}-wildcard"
  description = "*.${var.domain} and ${var.domain}: every workspace host, one certificate."
  scope       = "DEFAULT"
  labels      = var.labels

  managed {
    domains            = local.certificate_domains
    dns_authorizations = [google_certificate_manager_dns_authorization.domain.id]
  }
}

resource "google_certificate_manager_certificate_map" "gateway" {
  project     = var.project_id
  name        = "${var.prefix}-gateway"
  description = "Certificates of the Gateway ${var.gateway_name} (HYPERBOLA_GATEWAY_CERTMAP)."
  labels      = var.labels
}

# The workspaces' hosts. A client that sends no SNI, or another name, gets no certificate:
# the Gateway's listener serves *.<domain> only.
resource "google_certificate_manager_certificate_map_entry" "wildcard" {
  project      = var.project_id
  name         = "${var.prefix}-wildcard"
  map          = google_certificate_manager_certificate_map.gateway.name
  hostname     = "*.${var.domain}"
  certificates = [google_certificate_manager_certificate.wildcard.id]
  labels       = var.labels
}

# The authorization's record (a CNAME under _acme-challenge.<domain>), when the domain's DNS is
# a Cloud DNS zone of this project; without one, create it where the domain is hosted (output
# dns_authorization_record). Google issues the certificate once it resolves, and renews it as
# long as it stays.
resource "google_dns_record_set" "authorization" {
  count = var.dns_managed_zone == null ? 0 : 1

  project      = var.project_id
  managed_zone = var.dns_managed_zone
  name         = google_certificate_manager_dns_authorization.domain.dns_resource_record[0].name
  type         = google_certificate_manager_dns_authorization.domain.dns_resource_record[0].type
  ttl          = 300
  rrdatas      = [google_certificate_manager_dns_authorization.domain.dns_resource_record[0].data]
}
