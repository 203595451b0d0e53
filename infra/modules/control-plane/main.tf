# The control plane on Cloud Run: two services from one image (a Go build of
# ./functions/cmd/server), told apart by FUNCTION_TARGET:
#   session-api  FUNCTION_TARGET=SessionAPI  public (allUsers may invoke; the app checks X-API-Key)
#   idle-sweep   FUNCTION_TARGET=IdleSweep   private (only the scheduler's service account may invoke)
# and a Cloud Scheduler job that calls idle-sweep every minute with an OIDC token.
#
# Each service has its own service account and its own Secret Manager secret holding its API
# keys (comma-separated, exposed as API_KEYS); each account can read only its own secret.
# Both use Direct VPC egress (private ranges only) to reach Memorystore and the GKE control
# plane's private endpoint; Google APIs and the internet go out directly.

locals {
  sweep_service_name = "idle-sweep"

  # Cloud Run's deterministic URL. Known before the service exists, so it can be both the
  # audience Cloud Scheduler puts in its token and what idle-sweep checks it against
  # (SWEEP_OIDC_AUDIENCE) without a dependency cycle. Cloud Run's own IAM check accepts
  # tokens for either of a service's URLs.
  sweep_audience = "https://${local.sweep_service_name}-${var.project_number}.${var.region}.run.app"

  services = {
    api = {
      name            = "session-api"
      function_target = "SessionAPI"
      service_account = var.api_service_account_email
      api_key_count   = var.api_key_count
      max_instances   = var.api_max_instances
      timeout         = "60s"
      # /health answers 503 until Redis and the cluster are reachable, so a new instance
      # takes traffic only once Direct VPC egress is up (its first connections can take a
      # while on a fresh instance).
      startup_probe_path = "/health"
      extra_env          = {}
    }
    sweep = {
      name            = local.sweep_service_name
      function_target = "IdleSweep"
      service_account = var.sweep_service_account_email
      api_key_count   = 1
      max_instances   = 2
      timeout         = "300s"
      # Every path of this service runs the sweep, so it keeps Cloud Run's TCP probe.
      startup_probe_path = null
      extra_env = {
        SWEEP_OIDC_AUDIENCE        = local.sweep_audience
        SWEEP_OIDC_SERVICE_ACCOUNT = var.scheduler_service_account_email
      }
    }
  }

  # Defaults that extra_env may override. Cloud Run's front end sets X-Forwarded-For to the
  # caller's address and reaches the container from a link-local peer; trusting that peer
  # makes the per-IP creation limit count callers, not Cloud Run's proxy.
  # The sweep (idle-sweep, and POST /sweep on session-api) reads code-server's /healthz: the
  # in-cluster Service name it uses by default does not resolve on Cloud Run, so it goes
  # through the workspace's public Ingress ({id} and {domain} are filled by the app).
  overridable_env = {
    HYPERBOLA_TRUSTED_PROXIES = "169.254.0.0/16"
    HYPERBOLA_SWEEP_PROBE_URL = "https://vs-code-{id}.{domain}/healthz"
  }

  # The variables the app reads (internal/config). Values are strings, as env always is.
  common_env = merge(local.overridable_env, var.extra_env, {
    GOOGLE_CLOUD_PROJECT    = var.project_id
    REDIS_HOST              = var.redis_host
    REDIS_PORT              = tostring(var.redis_port)
    SESSION_TTL             = tostring(var.session_ttl_seconds)
    USER_POD_IMAGE          = var.user_pod_image
    USER_POD_PORT           = tostring(var.user_pod_port)
    HYPERBOLA_NAMESPACE     = var.namespace
    HYPERBOLA_DOMAIN        = var.domain
    HYPERBOLA_STORAGE_CLASS = var.storage_class
    HYPERBOLA_INGRESS_CLASS = var.ingress_class
    # Workspace NetworkPolicies admit traffic from this namespace only.
    HYPERBOLA_INGRESS_NAMESPACE = var.ingress_namespace
    HYPERBOLA_CLUSTER_ISSUER    = var.cluster_issuer
    HYPERBOLA_BACKUP_PVC        = var.backup_pvc
    HYPERBOLA_KUBE_ENDPOINT     = "https://${var.kube_private_endpoint}"
    HYPERBOLA_KUBE_CA           = var.kube_ca_certificate
  })

  api_keys = merge([
    for svc, cfg in local.services : {
      for i in range(cfg.api_key_count) : "${svc}-${i}" => svc
    }
  ]...)
}

# ---------------------------------------------------------------------------------------
# API keys: generated here, stored only in Secret Manager (and, as for any generated value,
# in the Terraform state: keep the state in a protected bucket).

resource "random_password" "api_key" {
  for_each = local.api_keys

  length  = 48
  special = false
}

resource "google_secret_manager_secret" "api_keys" {
  for_each = local.services

  project   = var.project_id
  secret_id = "${var.prefix}-${each.value.name}-api-keys"
  labels    = var.labels

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "api_keys" {
  for_each = local.services

  secret = google_secret_manager_secret.api_keys[each.key].id
  secret_data = join(",", [
    for id, svc in local.api_keys : random_password.api_key[id].result if svc == each.key
  ])
}

resource "google_secret_manager_secret_iam_member" "api_keys" {
  for_each = local.services

  project   = var.project_id
  secret_id = google_secret_manager_secret.api_keys[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value.service_account}"
}

# ---------------------------------------------------------------------------------------
# Cloud Run services.

resource "google_cloud_run_v2_service" "this" {
  for_each = local.services

  project             = var.project_id
  name                = each.value.name
  location            = var.region
  description         = "Hyperbola ${each.value.function_target} (functions/cmd/server)."
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    service_account                  = each.value.service_account
    timeout                          = each.value.timeout
    max_instance_request_concurrency = 80
    labels                           = var.labels

    scaling {
      min_instance_count = 0
      max_instance_count = each.value.max_instances
    }

    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"

      network_interfaces {
        network    = var.network_name
        subnetwork = var.serverless_subnet_name
      }
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      dynamic "startup_probe" {
        for_each = each.value.startup_probe_path == null ? [] : [each.value.startup_probe_path]
        content {
          initial_delay_seconds = 0
          period_seconds        = 5
          timeout_seconds       = 4
          failure_threshold     = 36

          http_get {
            path = startup_probe.value
          }
        }
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        # CPU only while a request is served: matches DESIGN.md's "no work after the response".
        cpu_idle          = true
        startup_cpu_boost = true
      }

      env {
        name  = "FUNCTION_TARGET"
        value = each.value.function_target
      }

      dynamic "env" {
        for_each = merge(local.common_env, each.value.extra_env)
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name = "API_KEYS"
        value_source {
          secret_key_ref {
            secret = google_secret_manager_secret.api_keys[each.key].secret_id
            # Pinned: rotating the keys (a new version) rolls out a new revision on apply.
            version = google_secret_manager_secret_version.api_keys[each.key].version
          }
        }
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.api_keys]
}

# session-api is public at the network level; every route but /health requires X-API-Key.
resource "google_cloud_run_v2_service_iam_member" "api_public" {
  project  = var.project_id
  location = google_cloud_run_v2_service.this["api"].location
  name     = google_cloud_run_v2_service.this["api"].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# idle-sweep: only the scheduler's identity may invoke it.
resource "google_cloud_run_v2_service_iam_member" "sweep_scheduler" {
  project  = var.project_id
  location = google_cloud_run_v2_service.this["sweep"].location
  name     = google_cloud_run_v2_service.this["sweep"].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.scheduler_service_account_email}"
}

# ---------------------------------------------------------------------------------------
# Every minute: POST idle-sweep with an OIDC token signed for the scheduler's account.
# No retries: the next run is a minute away, and a sweep is safe to skip.

resource "google_cloud_scheduler_job" "idle_sweep" {
  project          = var.project_id
  region           = var.region
  name             = "${var.prefix}-idle-sweep"
  description      = "Puts idle workspaces to sleep and drives pending steps (idle-sweep)."
  schedule         = var.sweep_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "300s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = google_cloud_run_v2_service.this["sweep"].uri
    body        = base64encode("{}")
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = var.scheduler_service_account_email
      audience              = local.sweep_audience
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.sweep_scheduler]
}
