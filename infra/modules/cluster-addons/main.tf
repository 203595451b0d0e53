# What lives inside the cluster:
#   - with enable_ingress (ingress routing, or gateway routing while both entry points serve):
#     ingress-nginx behind a reserved regional IP, cert-manager and a Let's Encrypt
#     ClusterIssuer (HTTP-01 through ingress-nginx); docs/operations/routing.md has the choice
#   - the workspace namespace, its quota, limits and default-deny NetworkPolicy, and the
#     control plane's namespaced RBAC
#   - the backup volume (PVC hyperbola-backups)
#   - hyperbola-activator, for wake on access: an ExternalName Service naming session-api
#     (ingress routing), or, with enable_relay (gateway routing), the activator relay's
#     Deployment behind a ClusterIP Service, its NetworkPolicy and GKE's health check and
#     backend policies for it; and the Secret of CAs that lets nginx verify session-api
#
# NOTE kubernetes_manifest needs its CRD to exist when it is planned, so a new project is
# applied in two steps (cert-manager, or the cluster with its Gateway API, first); see
# docs/operations/deploy.md.

locals {
  managed_labels = {
    "app.kubernetes.io/managed-by" = "terraform"
    "app.kubernetes.io/part-of"    = "hyperbola"
  }

  backup_access_mode = endswith(var.backup_storage_class, "-rwx") ? "ReadWriteMany" : "ReadWriteOnce"

  control_plane_users = {
    api   = var.api_service_account_email
    sweep = var.sweep_service_account_email
  }

  # How many of the ingress resources there are (0 or 1).
  ingress = var.enable_ingress ? 1 : 0
}

# Resources that became optional with gateway routing keep their state address.
moved {
  from = google_compute_address.ingress
  to   = google_compute_address.ingress[0]
}

moved {
  from = helm_release.ingress_nginx
  to   = helm_release.ingress_nginx[0]
}

moved {
  from = helm_release.cert_manager
  to   = helm_release.cert_manager[0]
}

moved {
  from = kubernetes_manifest.cluster_issuer
  to   = kubernetes_manifest.cluster_issuer[0]
}

moved {
  from = kubernetes_network_policy_v1.acme_http01_solver
  to   = kubernetes_network_policy_v1.acme_http01_solver[0]
}

# ---------------------------------------------------------------------------------------
# Ingress: ingress-nginx on a reserved IP.

resource "google_compute_address" "ingress" {
  count = local.ingress

  project      = var.project_id
  name         = "${var.prefix}-ingress"
  region       = var.region
  address_type = "EXTERNAL"
  network_tier = "PREMIUM"
  description  = "ingress-nginx LoadBalancer; *.${var.domain} points here."
}

resource "helm_release" "ingress_nginx" {
  count = local.ingress

  name             = "ingress-nginx"
  repository       = "https://kubernetes.github.io/ingress-nginx"
  chart            = "ingress-nginx"
  version          = var.ingress_nginx_chart_version
  namespace        = var.ingress_namespace
  create_namespace = true
  atomic           = true
  timeout          = 600

  values = [yamlencode({
    controller = {
      replicaCount = 2
      ingressClassResource = {
        name            = var.ingress_class_name
        enabled         = true
        default         = false
        controllerValue = "k8s.io/ingress-nginx"
      }
      ingressClass = var.ingress_class_name
      # code-server keeps a WebSocket open for the whole session; nginx's 60 s default
      # would cut idle editors off.
      config = {
        "proxy-read-timeout" = "3600"
        "proxy-send-timeout" = "3600"
        "proxy-body-size"    = "64m"
      }
      resources = {
        requests = {
          cpu    = "100m"
          memory = "128Mi"
        }
      }
      service = {
        type           = "LoadBalancer"
        loadBalancerIP = google_compute_address.ingress[0].address
        # Keep client source IPs (logs, and per-IP limits at the edge if added later).
        externalTrafficPolicy = "Local"
      }
    }
  })]
}

# ---------------------------------------------------------------------------------------
# TLS: cert-manager and a Let's Encrypt ClusterIssuer.

resource "helm_release" "cert_manager" {
  count = local.ingress

  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.cert_manager_chart_version
  namespace        = "cert-manager"
  create_namespace = true
  atomic           = true
  timeout          = 600

  values = [yamlencode({
    crds = {
      enabled = true
      keep    = true
    }
  })]
}

# HTTP-01 through ingress-nginx: one certificate per workspace host, issued when the API
# creates the workspace's Ingress (annotation cert-manager.io/cluster-issuer). Let's Encrypt
# allows 50 new certificates per registered domain per week; above that, switch to a DNS-01
# solver and one wildcard certificate (see docs/operations/deploy.md).
resource "kubernetes_manifest" "cluster_issuer" {
  count = local.ingress

  manifest = {
    apiVersion = "cert-manager.io/v1"
    kind       = "ClusterIssuer"
    metadata = {
      name   = var.cluster_issuer_name
      labels = local.managed_labels
    }
    spec = {
      acme = {
        email  = var.acme_email
        server = var.acme_server
        privateKeySecretRef = {
          name = "${var.cluster_issuer_name}-account-key"
        }
        solvers = [
          {
            http01 = {
              ingress = {
                ingressClassName = var.ingress_class_name
              }
            }
          }
        ]
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.acme_email != null
      error_message = "acme_email is needed while ingress-nginx and cert-manager are on (ingress routing, or keep_ingress)."
    }
  }

  depends_on = [helm_release.cert_manager, helm_release.ingress_nginx]
}

# ---------------------------------------------------------------------------------------
# The workspace namespace and what the control plane may do in it.

resource "kubernetes_namespace_v1" "workspaces" {
  metadata {
    name = var.namespace
    labels = merge(local.managed_labels, {
      # Workspaces and backup Jobs meet "baseline"; "restricted" is reported, not enforced,
      # so a Job image that runs as root is warned about rather than rejected.
      "pod-security.kubernetes.io/enforce" = "baseline"
      "pod-security.kubernetes.io/warn"    = "restricted"
      "pod-security.kubernetes.io/audit"   = "restricted"
    })
  }
}

# Limits and quotas (docs/operations/operations.md): the control plane refuses what is above
# its maximums before it writes anything; these bound the namespace whatever asks. There is no
# limits.cpu and no default CPU limit: workspaces have none on purpose (CFS throttling makes an
# editor feel broken), and a quota on limits.cpu would make every pod name one.
resource "kubernetes_resource_quota_v1" "workspaces" {
  metadata {
    name      = "hyperbola-workspaces"
    namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
    labels    = local.managed_labels
  }
  spec {
    hard = var.namespace_quota
  }
}

# Defaults for a container that names no request or limit (the backup Jobs name no
# ephemeral storage), and per-object maximums that match the control plane's: a container's
# memory limit is 4 times its request (16Gi at most), its ephemeral storage 4Gi, a claim 100Gi.
resource "kubernetes_limit_range_v1" "workspaces" {
  metadata {
    name      = "hyperbola-workspaces"
    namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
    labels    = local.managed_labels
  }
  spec {
    limit {
      type = "Container"
      default = {
        memory              = "1Gi"
        "ephemeral-storage" = "1Gi"
      }
      default_request = {
        cpu                 = "100m"
        memory              = "64Mi"
        "ephemeral-storage" = "64Mi"
      }
      max = {
        memory              = var.max_container_memory
        "ephemeral-storage" = var.max_container_ephemeral_storage
      }
    }
    limit {
      type = "PersistentVolumeClaim"
      max = {
        storage = var.max_claim_storage
      }
    }
  }
}

# Network: nothing in the namespace sends or receives what a policy of its own does not allow,
# so a workspace whose vs-code-<id> policy is missing (being created, or deleted by hand)
# reaches nothing: not the VPC, not Memorystore, not the metadata servers. Each workspace's
# policy opens its port to ingress-nginx (and the sweep's probe subnet), DNS to kube-dns and
# the internet; the backup, restore, check and removal Jobs touch only volumes and need no
# rule. scripts/local-network-policy.yaml is the same for the local cluster.
resource "kubernetes_network_policy_v1" "default_deny" {
  metadata {
    name      = "hyperbola-default-deny"
    namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
    labels    = local.managed_labels
  }
  spec {
    pod_selector {}
    policy_types = ["Ingress", "Egress"]
  }
}

# cert-manager answers each workspace's HTTP-01 challenge from a solver pod it starts in the
# workspace's namespace (beside the Ingress), reached through ingress-nginx, both by Let's
# Encrypt and by cert-manager's own self check: without this the default-deny would keep every
# certificate pending. Only its port, only from the ingress controller; it needs no egress.
resource "kubernetes_network_policy_v1" "acme_http01_solver" {
  count = local.ingress

  metadata {
    name      = "hyperbola-acme-http01-solver"
    namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
    labels    = local.managed_labels
  }
  spec {
    pod_selector {
      match_labels = {
        "acme.cert-manager.io/http01-solver" = "true"
      }
    }
    policy_types = ["Ingress"]
    ingress {
      from {
        namespace_selector {
          match_labels = {
            "kubernetes.io/metadata.name" = var.ingress_namespace
          }
        }
      }
      ports {
        protocol = "TCP"
        port     = "8089" # cert-manager's acmesolver --listen-port
      }
    }
  }
}

# The warm path's placeholders' PriorityClass (docs/operations/warm-path.md): cluster-scoped,
# so it is created here and never by the control plane, whose Role stays in the namespace.
# The sweep keeps HYPERBOLA_WARM_PLACEHOLDERS pods of this class on the workspace nodes
# (none by default). -10 is below every workspace (which names no class: 0), so a workspace
# that finds no room preempts a placeholder; and it is not below the cluster autoscaler's
# expendable-pods cutoff (-10), so the evicted placeholder still makes it add a node.
# preemptionPolicy Never: a placeholder never evicts anything itself.
# scripts/local-priority-class.yaml is the same for the local cluster.
resource "kubernetes_priority_class_v1" "placeholder" {
  metadata {
    name = var.placeholder_priority_class_name
    labels = merge(local.managed_labels, {
      "app.kubernetes.io/component" = "placeholder"
    })
  }

  value             = -10
  preemption_policy = "Never"
  global_default    = false
  description       = "Hyperbola's placeholder pods, which hold room for workspaces; any workspace preempts them."
}

# Exactly the objects a session is made of (DESIGN.md), plus the backup Jobs, and nothing
# cluster-wide. Writes go through server-side apply (PATCH), hence patch everywhere.
resource "kubernetes_role_v1" "control_plane" {
  metadata {
    name      = "hyperbola-control-plane"
    namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
    labels    = local.managed_labels
  }

  # Workspace disks; patch also expands them (the StorageClass allows expansion).
  rule {
    api_groups = [""]
    resources  = ["persistentvolumeclaims"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  rule {
    api_groups = [""]
    resources  = ["services", "secrets"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  rule {
    api_groups = ["apps"]
    resources  = ["deployments"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  # The warm path's image pre-pull (hyperbola-prepull; the placeholders are a Deployment).
  rule {
    api_groups = ["apps"]
    resources  = ["daemonsets"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  # Sleep and wake scale the Deployment between 0 and 1.
  rule {
    api_groups = ["apps"]
    resources  = ["deployments/scale"]
    verbs      = ["get", "update", "patch"]
  }

  rule {
    api_groups = ["networking.k8s.io"]
    resources  = ["ingresses", "networkpolicies"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  # Gateway routing (HYPERBOLA_ROUTING=gateway): an HTTPRoute per workspace and the shared
  # Gateway (kept by every sweep, in the workspace namespace by default), and on GKE each
  # workspace Service's health check and backend timeout policies.
  rule {
    api_groups = ["gateway.networking.k8s.io"]
    resources  = ["httproutes", "gateways"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  rule {
    api_groups = ["networking.gke.io"]
    resources  = ["healthcheckpolicies", "gcpbackendpolicies"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  # Backup Jobs (zip a workspace disk into the backup volume before it is deleted).
  rule {
    api_groups = ["batch"]
    resources  = ["jobs"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  # Readiness and failure reasons of workspace and backup Pods: read only.
  rule {
    api_groups = [""]
    resources  = ["pods"]
    verbs      = ["get", "list", "watch"]
  }

  rule {
    api_groups = [""]
    resources  = ["serviceaccounts"]
    verbs      = ["get", "list"]
  }
}

# GKE authenticates a Google service account's token as the Kubernetes user named by its
# email, so the binding's subjects are Users, not ServiceAccounts. The accounts hold only
# roles/container.clusterViewer in IAM (enough to authenticate, nothing inside the cluster).
resource "kubernetes_role_binding_v1" "control_plane" {
  metadata {
    name      = "hyperbola-control-plane"
    namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
    labels    = local.managed_labels
  }

  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.control_plane.metadata[0].name
  }

  dynamic "subject" {
    for_each = local.control_plane_users
    content {
      api_group = "rbac.authorization.k8s.io"
      kind      = "User"
      name      = subject.value
    }
  }
}

# The warm volume pool (HYPERBOLA_WARM_VOLUMES, docs/operations/warm-path.md), only when it
# is on: PersistentVolumes and Nodes are cluster-scoped, so the namespace's Role cannot grant
# them. The control plane relabels and re-reserves the volumes its pool claims provisioned,
# hands one to a new session's claim, and releases the ones that no longer fit; it reads the
# Nodes to pick where a pool claim is provisioned (a WaitForFirstConsumer class needs one).
# RBAC cannot narrow a rule to labelled objects: with the pool on, these accounts could also
# rebind or delete any PersistentVolume in the cluster (docs/operations/trust-model.md).
resource "kubernetes_cluster_role_v1" "warm_volumes" {
  count = var.warm_volumes > 0 ? 1 : 0

  metadata {
    name   = "hyperbola-warm-volumes"
    labels = local.managed_labels
  }

  rule {
    api_groups = [""]
    resources  = ["persistentvolumes"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  rule {
    api_groups = [""]
    resources  = ["nodes"]
    verbs      = ["get", "list"]
  }
}

resource "kubernetes_cluster_role_binding_v1" "warm_volumes" {
  count = var.warm_volumes > 0 ? 1 : 0

  metadata {
    name   = "hyperbola-warm-volumes"
    labels = local.managed_labels
  }

  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "ClusterRole"
    name      = kubernetes_cluster_role_v1.warm_volumes[0].metadata[0].name
  }

  dynamic "subject" {
    for_each = local.control_plane_users
    content {
      api_group = "rbac.authorization.k8s.io"
      kind      = "User"
      name      = subject.value
    }
  }
}

# ---------------------------------------------------------------------------------------
# Backup volume. Default: a regular standard-rwo persistent disk (ReadWriteOnce). RWO means
# one node at a time: backup Jobs on the same node share it, a Job on another node waits
# (the pod stays ContainerCreating with a Multi-Attach warning) until the disk is released.
# Backups happen once per deleted session, so that queueing is acceptable here and costs
# about a tenth of Filestore; the trade-offs and the GCS alternative are in deploy.md.
# A "-rwx" class (Filestore, 1 TiB minimum) makes it ReadWriteMany.

resource "kubernetes_persistent_volume_claim_v1" "backups" {
  metadata {
    name      = var.backup_pvc_name
    namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
    labels = merge(local.managed_labels, {
      "app.kubernetes.io/component" = "backups"
    })
  }

  spec {
    access_modes       = [local.backup_access_mode]
    storage_class_name = var.backup_storage_class

    resources {
      requests = {
        storage = var.backup_volume_size
      }
    }
  }

  # standard-rwo binds on first use (WaitForFirstConsumer): the first backup Job binds it.
  wait_until_bound = false
}

# ---------------------------------------------------------------------------------------
# Wake on access: while a workspace sleeps, the API points its route at this Service so the
# browser reaches the activator in session-api.
#   - Ingress routing: an ExternalName Service for session-api's host, port 443; the Ingress
#     carries the ingress-nginx annotations backend-protocol: HTTPS and upstream-vhost.
#   - Gateway routing (enable_relay): a ClusterIP Service in front of the activator relay
#     (relay.tf), port 80, because a Gateway's backendRef cannot name an ExternalName Service.
#     While ingress-nginx is still on (enable_ingress), port 443 of the same Service copies TCP
#     to session-api's 443, so an Ingress written for the ExternalName Service keeps working:
#     nginx's own TLS, SNI and verification run end to end through it.
# One resource for both shapes: switching routing changes this Service in place (or replaces
# it), never creates a second one under the same name.

locals {
  activator_ca_bundle = coalesce(var.activator_ca_bundle, file("${path.module}/activator-roots.pem"))

  relay = var.create_activator_service && var.enable_relay

  activator_labels = merge(local.managed_labels, {
    "app.kubernetes.io/component" = "activator"
  })

  # The Service's ports: name => [port, target port].
  activator_ports = local.relay ? merge(
    { http = [80, local.relay_port] },
    var.enable_ingress ? { https = [443, local.relay_passthrough_port] } : {},
  ) : { https = [443, 443] }
}

resource "kubernetes_service_v1" "activator" {
  count = var.create_activator_service ? 1 : 0

  metadata {
    name      = "hyperbola-activator"
    namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
    labels    = local.activator_labels
  }

  spec {
    type          = local.relay ? "ClusterIP" : "ExternalName"
    external_name = local.relay ? null : var.activator_host
    selector      = local.relay ? local.relay_selector : null

    dynamic "port" {
      for_each = local.activator_ports
      content {
        name        = port.key
        port        = port.value[0]
        target_port = tostring(port.value[1])
        protocol    = "TCP"
      }
    }
  }
}

# CAs that verify session-api's certificate (HYPERBOLA_ACTIVATOR_CA_SECRET), created with the
# activator's Service: the Ingress of a sleeping workspace gets proxy-ssl-secret/-verify/-name/
# -server-name, so nginx sends SNI to Cloud Run and checks its certificate (a sleeping
# workspace's password and cookies cross this hop). The bundle is activator_ca_bundle, or the
# public roots this module ships (activator-roots.pem). Public roots only: nothing secret.
# The relay verifies with the same bundle when activator_ca_bundle is set, else with the
# system roots of its image.
resource "kubernetes_secret_v1" "activator_ca" {
  count = var.create_activator_service ? 1 : 0

  metadata {
    name      = var.activator_ca_secret_name
    namespace = kubernetes_namespace_v1.workspaces.metadata[0].name
    labels    = local.activator_labels
  }

  data = {
    "ca.crt" = local.activator_ca_bundle
  }
}
