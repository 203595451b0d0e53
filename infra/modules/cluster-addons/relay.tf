# The activator relay of gateway routing (functions/cmd/relay; docs/operations/routing.md),
# only with enable_relay. GKE's Gateway sends a sleeping workspace's host to the Service
# hyperbola-activator (main.tf) on port 80; the relay takes it there as plain HTTP and relays
# it to https://<activator_host> (session-api on Cloud Run), verified, with Host = that host
# and X-Forwarded-Host = the workspace's host, which the activator trusts from its trusted
# proxies. It holds no credentials: no service account token, no Secret but public CAs.

locals {
  relay_port             = 8080
  relay_passthrough_port = 8443
  relay_ca_dir           = "/etc/hyperbola/activator-ca"

  relay_selector = {
    "app.kubernetes.io/name"      = "hyperbola-activator-relay"
    "app.kubernetes.io/component" = "activator-relay"
  }

  relay_env = merge(
    {
      PORT                     = tostring(local.relay_port)
      HYPERBOLA_ACTIVATOR_HOST = var.activator_host
    },
    var.enable_ingress ? { HYPERBOLA_RELAY_PASSTHROUGH_PORT = tostring(local.relay_passthrough_port) } : {},
    var.activator_ca_bundle == null ? {} : { HYPERBOLA_ACTIVATOR_CA_FILE = "${local.relay_ca_dir}/ca.crt" },
  )

  # Where the relay may connect: session-api's host resolves to Google's public addresses,
  # reached over Private Google Access; never a private range or the metadata servers.
  relay_denied_cidrs = ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"]
}

resource "kubernetes_deployment_v1" "relay" {
  count = local.relay ? 1 : 0

  metadata {
    name      = "hyperbola-activator-relay"
    namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
    labels    = merge(local.managed_labels, local.relay_selector)
  }

  spec {
    # Two, on different nodes when there are two: a sleeping workspace's address is only as
    # available as the relay.
    replicas = var.relay_replicas

    selector {
      match_labels = local.relay_selector
    }

    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_surge       = "1"
        max_unavailable = "0"
      }
    }

    template {
      metadata {
        labels = merge(local.managed_labels, local.relay_selector)
      }

      spec {
        automount_service_account_token = false
        enable_service_links            = false
        # Longer than the relay's own 20 s drain, so open requests finish on SIGTERM.
        termination_grace_period_seconds = 30

        security_context {
          run_as_non_root = true
          run_as_user     = 65532
          run_as_group    = 65532
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        affinity {
          pod_anti_affinity {
            preferred_during_scheduling_ignored_during_execution {
              weight = 100
              pod_affinity_term {
                topology_key = "kubernetes.io/hostname"
                label_selector {
                  match_labels = local.relay_selector
                }
              }
            }
          }
        }

        container {
          name  = "relay"
          image = var.relay_image

          port {
            name           = "http"
            container_port = local.relay_port
          }

          dynamic "port" {
            for_each = var.enable_ingress ? [local.relay_passthrough_port] : []
            content {
              name           = "passthrough"
              container_port = port.value
            }
          }

          dynamic "env" {
            for_each = local.relay_env
            content {
              name  = env.key
              value = env.value
            }
          }

          resources {
            requests = {
              cpu                 = "50m"
              memory              = "32Mi"
              "ephemeral-storage" = "16Mi"
            }
            limits = {
              memory              = "128Mi"
              "ephemeral-storage" = "64Mi"
            }
          }

          # /healthz without X-Forwarded-For is the relay's own answer (functions/cmd/relay).
          readiness_probe {
            http_get {
              path = "/healthz"
              port = local.relay_port
            }
            period_seconds    = 5
            failure_threshold = 2
          }

          liveness_probe {
            http_get {
              path = "/healthz"
              port = local.relay_port
            }
            period_seconds    = 20
            failure_threshold = 3
          }

          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            capabilities {
              drop = ["ALL"]
            }
          }

          dynamic "volume_mount" {
            for_each = var.activator_ca_bundle == null ? [] : [1]
            content {
              name       = "activator-ca"
              mount_path = local.relay_ca_dir
              read_only  = true
            }
          }
        }

        dynamic "volume" {
          for_each = var.activator_ca_bundle == null ? [] : [1]
          content {
            name = "activator-ca"
            secret {
              secret_name = kubernetes_secret_v1.activator_ca[0].metadata[0].name
            }
          }
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.relay_image != null
      error_message = "enable_relay needs relay_image (images/relay pushed to the registry)."
    }
  }
}

# The namespace denies everything by default (main.tf). The relay takes the Gateway's traffic
# and the load balancer's health checks, both from Google's front-end ranges
# (gateway_source_cidrs), on its HTTP port; while ingress-nginx is on, also ingress-nginx's
# pods, on both ports. It sends DNS to kube-dns and HTTPS to the internet only.
resource "kubernetes_network_policy_v1" "relay" {
  count = local.relay ? 1 : 0

  metadata {
    name      = "hyperbola-activator-relay"
    namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
    labels    = local.managed_labels
  }

  spec {
    pod_selector {
      match_labels = local.relay_selector
    }
    policy_types = ["Ingress", "Egress"]

    ingress {
      dynamic "from" {
        for_each = var.gateway_source_cidrs
        content {
          ip_block {
            cidr = from.value
          }
        }
      }
      ports {
        protocol = "TCP"
        port     = tostring(local.relay_port)
      }
    }

    dynamic "ingress" {
      for_each = var.enable_ingress ? [1] : []
      content {
        from {
          namespace_selector {
            match_labels = {
              "kubernetes.io/metadata.name" = var.ingress_namespace
            }
          }
        }
        # The passthrough (an Ingress written for the ExternalName Service: port 443, HTTPS
        # annotations), and the HTTP port (an Ingress that names port 80 without them).
        ports {
          protocol = "TCP"
          port     = tostring(local.relay_passthrough_port)
        }
        ports {
          protocol = "TCP"
          port     = tostring(local.relay_port)
        }
      }
    }

    egress {
      to {
        namespace_selector {
          match_labels = {
            "kubernetes.io/metadata.name" = "kube-system"
          }
        }
        pod_selector {
          match_labels = {
            "k8s-app" = "kube-dns"
          }
        }
      }
      ports {
        protocol = "UDP"
        port     = "53"
      }
      ports {
        protocol = "TCP"
        port     = "53"
      }
    }

    egress {
      to {
        ip_block {
          cidr   = "0.0.0.0/0"
          except = local.relay_denied_cidrs
        }
      }
      ports {
        protocol = "TCP"
        port     = "443"
      }
    }
  }
}

# GKE's load balancer checks each relay pod at /healthz on its serving port (the default
# would be "/", which the relay would pass on to the activator). Both policies target the
# Service; their CRDs come with the cluster's Gateway API (modules/gke).
resource "kubernetes_manifest" "relay_health_check" {
  count = local.relay ? 1 : 0

  manifest = {
    apiVersion = "networking.gke.io/v1"
    kind       = "HealthCheckPolicy"
    metadata = {
      name      = "hyperbola-activator"
      namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
      labels    = local.managed_labels
    }
    spec = {
      default = {
        checkIntervalSec   = 10
        timeoutSec         = 5
        healthyThreshold   = 1
        unhealthyThreshold = 3
        config = {
          type = "HTTP"
          httpHealthCheck = {
            portSpecification = "USE_SERVING_PORT"
            requestPath       = "/healthz"
          }
        }
      }
      targetRef = {
        group = ""
        kind  = "Service"
        name  = kubernetes_service_v1.activator[0].metadata[0].name
      }
    }
  }
}

# The load balancer's backend timeout is the longest a request, or an upgraded connection,
# may last (30 s by default). Nothing through the relay outlives session-api's own Cloud Run
# timeout (300 s), so the same here.
resource "kubernetes_manifest" "relay_backend_policy" {
  count = local.relay ? 1 : 0

  manifest = {
    apiVersion = "networking.gke.io/v1"
    kind       = "GCPBackendPolicy"
    metadata = {
      name      = "hyperbola-activator"
      namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
      labels    = local.managed_labels
    }
    spec = {
      default = {
        timeoutSec = 300
      }
      targetRef = {
        group = ""
        kind  = "Service"
        name  = kubernetes_service_v1.activator[0].metadata[0].name
      }
    }
  }
}
