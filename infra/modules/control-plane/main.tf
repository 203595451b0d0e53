# The control plane on Cloud Run: two services from one image (a Go build of
# ./functions/cmd/server), told apart by FUNCTION_TARGET:
#   session-api  FUNCTION_TARGET=SessionAPI  public (allUsers may invoke; the app checks X-API-Key)
#   idle-sweep   FUNCTION_TARGET=IdleSweep   private (only the scheduler's service account may invoke)
# and a Cloud Scheduler job that calls idle-sweep every minute with an OIDC token.
#
# Each service has its own service account and its own Secret Manager secret holding its API
# keys (comma-separated, exposed as API_KEYS; admin keys); each account can read only its own
# secret. session-api's named keys with roles (api_key_roles) are one more secret of its own,
# a JSON array exposed as API_KEYS_JSON.
# With wake_on_access, one more secret holds HYPERBOLA_WAKE_SECRET, mounted into both services
# (see "Wake on access" below for why idle-sweep needs it too). One more holds
# HYPERBOLA_ACTIVITY_KEY, the key of the workspaces' activity credentials, also in both (see
# "The activity credential" below). With redis_auth_string, one
# more holds Memorystore's AUTH string, read by both as REDIS_PASSWORD.
# Both use Direct VPC egress (private ranges only) to reach Memorystore and the GKE control
# plane's private endpoint; Google APIs and the internet go out directly.

locals {
  sweep_service_name = "idle-sweep"

  # Cloud Run's deterministic URL. Known before the service exists, so it can be both the
  # audience Cloud Scheduler puts in its token and what idle-sweep checks it against
  # (SWEEP_OIDC_AUDIENCE) without a dependency cycle. Cloud Run's own IAM check accepts
  # tokens for either of a service's URLs.
  sweep_audience = "https://${local.sweep_service_name}-${var.project_number}.${var.region}.run.app"

  # session-api's run.app host, derived the same way (the service's own `uri` cannot feed its
  # own environment). It is HYPERBOLA_ACTIVATOR_HOST: the Host (upstream-vhost) ingress-nginx
  # sends to Cloud Run for a sleeping workspace, and the target of the hyperbola-activator
  # ExternalName Service, so the caller passes the one value it gave cluster-addons.
  api_service_name = "session-api"
  api_host         = "${local.api_service_name}-${var.project_number}.${var.region}.run.app"
  activator_host   = coalesce(var.activator_host, local.api_host)

  # HYPERBOLA_ACTIVITY_URL: session-api as a workspace reaches it (its public run.app URL; the
  # workspace NetworkPolicy lets workspaces out to the internet), where the IDE extension
  # reports use. "" gives workspaces no URL: the extension stays silent and the heartbeat rule
  # with its cap applies.
  activity_url = var.activity_url == null ? "https://${local.api_host}" : var.activity_url

  services = {
    api = {
      name            = local.api_service_name
      function_target = "SessionAPI"
      service_account = var.api_service_account_email
      api_key_count   = var.api_key_count
      max_instances   = var.api_max_instances
      # A create with restore_from reads its archive through (a short Job) before it answers:
      # seconds for most, a few minutes for a large archive on a cold node.
      timeout = "300s"
      # /ready answers 503 until Redis and the cluster are reachable, so a new instance
      # takes traffic only once Direct VPC egress is up (its first connections can take a
      # while on a fresh instance). /health asks no dependency: the liveness probe restarts
      # an instance only when its process stops answering, never for an outage of Redis or
      # the cluster, which a restart would not mend.
      startup_probe_path  = "/ready"
      liveness_probe_path = "/health"
      extra_env           = {}
    }
    sweep = {
      name            = local.sweep_service_name
      function_target = "IdleSweep"
      service_account = var.sweep_service_account_email
      api_key_count   = 1
      max_instances   = 2
      timeout         = "300s"
      # Every path of this service runs the sweep, so it keeps Cloud Run's TCP probe.
      startup_probe_path  = null
      liveness_probe_path = null
      extra_env = {
        SWEEP_OIDC_AUDIENCE        = local.sweep_audience
        SWEEP_OIDC_SERVICE_ACCOUNT = var.scheduler_service_account_email
      }
    }
  }

  # Defaults that extra_env may override (kept so for configurations that already set them
  # there; the variables are the way to set them now).
  # HYPERBOLA_TRUSTED_PROXIES: Cloud Run's front end appends the address it was reached from to
  # X-Forwarded-For and connects to the container from a link-local peer (169.254.0.0/16);
  # trusting that peer makes the per-IP limits count callers, not Cloud Run's proxy. The
  # activator's callers arrive through ingress-nginx, so the cluster's egress addresses belong
  # here too (var.trusted_proxies; environments/dev adds them).
  # HYPERBOLA_SWEEP_PROBE_URL: the sweep (idle-sweep, and POST /sweep on session-api) reads
  # code-server's /healthz; the in-cluster Service name it uses by default does not resolve on
  # Cloud Run, so it reaches the Ready pod at its address over Direct VPC egress (the sweep
  # lists the workspace pods once per sweep), which does not depend on the workspace's
  # certificate as the public Ingress would.
  # GOGC and GOMEMLIMIT: the Go runtime's collector. A request allocates ~14 KB and the live
  # heap is a few MB, so at the default GOGC=100 the collector ran many times a second under
  # load and its pauses made the tail: bench/api's status at concurrency 10 had p99 10.6-13.3 ms
  # at 100 and 7.8-8.6 ms at 400 (c=100: 2,360-3,740 vs 4,600-5,950 requests/s). GOMEMLIMIT keeps
  # the heap well inside the container's 512Mi whatever GOGC lets it grow to.
  overridable_env = {
    HYPERBOLA_TRUSTED_PROXIES = join(",", var.trusted_proxies)
    HYPERBOLA_SWEEP_PROBE_URL = var.sweep_probe_url
    GOGC                      = "400"
    GOMEMLIMIT                = "384MiB"
  }

  # Wake on access (docs/operations/wake-on-access.md). Both services get these: the activator
  # is served by session-api, but the Ingress route is chosen by whichever process changes a
  # session, and idle-sweep is the one that puts idle workspaces to sleep. A process whose
  # configuration lacks the secret routes every Ingress to its workspace (the app turns wake on
  # access on only with both HYPERBOLA_ACTIVATOR_SERVICE and HYPERBOLA_WAKE_SECRET), so an
  # idle-sweep without it would leave each workspace it puts to sleep on its scaled-down
  # Service: nginx's 503 at the address instead of the activator's page.
  wake_env = var.wake_on_access ? merge({
    HYPERBOLA_ACTIVATOR_SERVICE = var.activator_service
    HYPERBOLA_ACTIVATOR_HOST    = local.activator_host
    }, var.activator_ca_secret == null ? {} : {
    HYPERBOLA_ACTIVATOR_CA_SECRET = var.activator_ca_secret
  }) : {}

  # The IDE extension's settings, given to both services: each builds workspace Deployments
  # (idle-sweep re-applies a create that did not finish, and repairs drift), and a Deployment
  # applied without them would lose the extension's environment, and roll when the other
  # service applies it again.
  activity_env = local.activity_url == "" ? {} : { HYPERBOLA_ACTIVITY_URL = local.activity_url }

  # Usage report prices (GET /usage); unset ones keep the app's defaults.
  price_env = merge(
    var.price_per_hour == null ? {} : { HYPERBOLA_PRICE_PER_HOUR = tostring(var.price_per_hour) },
    var.storage_price_per_gb_month == null ? {} : { HYPERBOLA_STORAGE_PRICE_PER_GB_MONTH = tostring(var.storage_price_per_gb_month) },
    { HYPERBOLA_CURRENCY = var.currency },
  )

  # Where workspace and backup pods run (HYPERBOLA_NODE_SELECTOR key=value,...; and
  # HYPERBOLA_TOLERATIONS key=value:Effect or key:Effect, comma-separated); unset ones leave the
  # pods wherever the scheduler puts them.
  placement_env = merge(
    length(var.workspace_node_selector) == 0 ? {} : {
      HYPERBOLA_NODE_SELECTOR = join(",", [for k in sort(keys(var.workspace_node_selector)) : "${k}=${var.workspace_node_selector[k]}"])
    },
    length(var.workspace_tolerations) == 0 ? {} : {
      HYPERBOLA_TOLERATIONS = join(",", [
        for t in var.workspace_tolerations : t.value == null ? "${t.key}:${t.effect}" : "${t.key}=${t.value}:${t.effect}"
      ])
    },
  )

  # The workspace NetworkPolicy's extra peers and Redis's CA; unset ones keep the app's
  # defaults (no probe rule, DNS to kube-dns only, plain TCP to Redis).
  network_env = merge(
    length(var.probe_source_cidrs) == 0 ? {} : { HYPERBOLA_PROBE_SOURCE_CIDRS = join(",", var.probe_source_cidrs) },
    length(var.dns_cidrs) == 0 ? {} : { HYPERBOLA_DNS_CIDRS = join(",", var.dns_cidrs) },
    var.redis_tls ? { HYPERBOLA_REDIS_CA = var.redis_ca } : {},
  )

  # The warm path (docs/operations/warm-path.md), kept by every sweep. Both services get it:
  # POST /sweep on session-api runs the same sweep as idle-sweep, and a sweep that read 0
  # would remove what the other one keeps.
  warm_env = {
    HYPERBOLA_WARM_PLACEHOLDERS          = tostring(var.warm_placeholders)
    HYPERBOLA_WARM_PREPULL               = tostring(var.warm_prepull)
    HYPERBOLA_PLACEHOLDER_PRIORITY_CLASS = var.placeholder_priority_class
  }

  # Routing (docs/operations/routing.md). Ingress routing names ingress-nginx's class and
  # namespace (the only source workspace NetworkPolicies admit) and cert-manager's issuer;
  # gateway routing names the Gateway the control plane writes, its certificate map and
  # address, and who may reach a workspace (Google's front ends). While both entry points
  # serve (keep_ingress) both sets are given.
  ingress_env = var.ingress_class == null ? {} : merge(
    { HYPERBOLA_INGRESS_CLASS = var.ingress_class },
    var.ingress_namespace == null ? {} : { HYPERBOLA_INGRESS_NAMESPACE = var.ingress_namespace },
    var.cluster_issuer == null ? {} : { HYPERBOLA_CLUSTER_ISSUER = var.cluster_issuer },
  )
  gateway_env = var.routing != "gateway" ? {} : merge(
    {
      HYPERBOLA_GATEWAY_NAME         = var.gateway_name
      HYPERBOLA_GATEWAY_CLASS        = var.gateway_class
      HYPERBOLA_GATEWAY_SOURCE_CIDRS = join(",", var.gateway_source_cidrs)
      HYPERBOLA_KEEP_INGRESS         = tostring(var.keep_ingress)
    },
    var.gateway_namespace == null ? {} : { HYPERBOLA_GATEWAY_NAMESPACE = var.gateway_namespace },
    var.gateway_certmap == null ? {} : { HYPERBOLA_GATEWAY_CERTMAP = var.gateway_certmap },
    var.gateway_address == null ? {} : { HYPERBOLA_GATEWAY_ADDRESS = var.gateway_address },
  )
  routing_env = merge(local.ingress_env, local.gateway_env, { HYPERBOLA_ROUTING = var.routing })

  # The variables the app reads (internal/config). Values are strings, as env always is.
  common_env = merge(local.overridable_env, var.extra_env, local.wake_env, local.activity_env, local.price_env, local.placement_env, local.network_env, local.warm_env, local.routing_env, {
    GOOGLE_CLOUD_PROJECT       = var.project_id
    REDIS_HOST                 = var.redis_host
    REDIS_PORT                 = tostring(var.redis_port)
    SESSION_TTL                = tostring(var.session_ttl_seconds)
    USER_POD_IMAGE             = var.user_pod_image
    HYPERBOLA_BACKUP_IMAGE     = var.backup_image
    USER_POD_PORT              = tostring(var.user_pod_port)
    HYPERBOLA_NAMESPACE        = var.namespace
    HYPERBOLA_DOMAIN           = var.domain
    HYPERBOLA_STORAGE_CLASS    = var.storage_class
    HYPERBOLA_WARM_VOLUMES     = tostring(var.warm_volumes)
    HYPERBOLA_BACKUP_PVC       = var.backup_pvc
    HYPERBOLA_BACKUP_RETENTION = "${var.backup_retention_days}d"
    HYPERBOLA_KUBE_ENDPOINT    = "https://${var.kube_private_endpoint}"
    HYPERBOLA_KUBE_CA          = var.kube_ca_certificate
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

# Named keys with roles (admin, tenant bound to users, metrics, sweep): one JSON secret for
# session-api, read as API_KEYS_JSON; the app checks it at start and refuses to serve a bad one.

resource "random_password" "named_api_key" {
  for_each = var.api_key_roles

  length  = 48
  special = false
}

resource "google_secret_manager_secret" "named_api_keys" {
  count = length(var.api_key_roles) > 0 ? 1 : 0

  project   = var.project_id
  secret_id = "${var.prefix}-${local.api_service_name}-named-api-keys"
  labels    = var.labels

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "named_api_keys" {
  count = length(var.api_key_roles) > 0 ? 1 : 0

  secret = google_secret_manager_secret.named_api_keys[0].id
  secret_data = jsonencode([
    for name, k in var.api_key_roles : {
      name  = name
      key   = random_password.named_api_key[name].result
      role  = k.role
      users = k.users
    }
  ])
}

resource "google_secret_manager_secret_iam_member" "named_api_keys" {
  count = length(var.api_key_roles) > 0 ? 1 : 0

  project   = var.project_id
  secret_id = google_secret_manager_secret.named_api_keys[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${var.api_service_account_email}"
}

# ---------------------------------------------------------------------------------------
# Wake on access: HYPERBOLA_WAKE_SECRET signs wake links and wake cookies (HMAC-SHA256; the app
# wants at least 32 bytes). 64 letters and digits, generated here, kept in Secret Manager (and
# the state). Rotating it (-replace the random_password) invalidates every outstanding link
# and cookie: owners type the IDE password once more.

resource "random_password" "wake_secret" {
  count = var.wake_on_access ? 1 : 0

  length  = 64
  special = false
}

resource "google_secret_manager_secret" "wake" {
  count = var.wake_on_access ? 1 : 0

  project   = var.project_id
  secret_id = "${var.prefix}-wake-secret"
  labels    = var.labels

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "wake" {
  count = var.wake_on_access ? 1 : 0

  secret      = google_secret_manager_secret.wake[0].id
  secret_data = random_password.wake_secret[0].result
}

# Both services read it (see local.wake_env), each on this one secret only.
resource "google_secret_manager_secret_iam_member" "wake" {
  for_each = { for svc, cfg in local.services : svc => cfg.service_account if var.wake_on_access }

  project   = var.project_id
  secret_id = google_secret_manager_secret.wake[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value}"
}

# ---------------------------------------------------------------------------------------
# The activity credential (docs/operations/trust-model.md): HYPERBOLA_ACTIVITY_KEY is the key
# every session's credential is derived from (HMAC-SHA256 of its id; the app wants at least 32
# bytes). 64 letters and digits, generated here, kept in Secret Manager (and the state). Both
# services read it: each may create a session's Secret, which holds the credential from then
# on (idle-sweep when it re-applies a create that did not finish), and session-api checks the
# credentials. Rotating it (-replace the random_password) invalidates every workspace's
# credential: a Secret is created once and never rewritten, so a workspace reports again only
# once its Secret is made anew (a new session, or a restore into one); until then it falls back
# to the heartbeat rule with its cap.

resource "random_password" "activity_key" {
  length  = 64
  special = false
}

resource "google_secret_manager_secret" "activity" {
  project   = var.project_id
  secret_id = "${var.prefix}-activity-key"
  labels    = var.labels

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "activity" {
  secret      = google_secret_manager_secret.activity.id
  secret_data = random_password.activity_key.result
}

resource "google_secret_manager_secret_iam_member" "activity" {
  for_each = { for svc, cfg in local.services : svc => cfg.service_account }

  project   = var.project_id
  secret_id = google_secret_manager_secret.activity.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value}"
}

# ---------------------------------------------------------------------------------------
# Memorystore's AUTH string (the redis module's auth_string), read by both services as
# REDIS_PASSWORD. Memorystore makes it; rotating it there and applying here rolls both
# services to the new version.

locals {
  redis_auth = var.redis_auth_enabled
}

resource "google_secret_manager_secret" "redis_auth" {
  count = local.redis_auth ? 1 : 0

  project   = var.project_id
  secret_id = "${var.prefix}-redis-auth"
  labels    = var.labels

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "redis_auth" {
  count = local.redis_auth ? 1 : 0

  secret      = google_secret_manager_secret.redis_auth[0].id
  secret_data = var.redis_auth_string
}

resource "google_secret_manager_secret_iam_member" "redis_auth" {
  for_each = { for svc, cfg in local.services : svc => cfg.service_account if local.redis_auth }

  project   = var.project_id
  secret_id = google_secret_manager_secret.redis_auth[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value}"
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

      # After startup. Probes come from Cloud Run's link-local front end, a trusted proxy,
      # so the API's per-IP limit on /health does not count them.
      dynamic "liveness_probe" {
        for_each = each.value.liveness_probe_path == null ? [] : [each.value.liveness_probe_path]
        content {
          initial_delay_seconds = 0
          period_seconds        = 30
          timeout_seconds       = 5
          failure_threshold     = 3

          http_get {
            path = liveness_probe.value
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

      dynamic "env" {
        for_each = each.key == "api" && length(var.api_key_roles) > 0 ? ["API_KEYS_JSON"] : []
        content {
          name = env.value
          value_source {
            secret_key_ref {
              secret = google_secret_manager_secret.named_api_keys[0].secret_id
              # Pinned like the API keys: a changed key set rolls out a new revision on apply.
              version = google_secret_manager_secret_version.named_api_keys[0].version
            }
          }
        }
      }

      dynamic "env" {
        for_each = var.wake_on_access ? ["HYPERBOLA_WAKE_SECRET"] : []
        content {
          name = env.value
          value_source {
            secret_key_ref {
              secret = google_secret_manager_secret.wake[0].secret_id
              # Pinned like the API keys: a new secret rolls both services on apply.
              version = google_secret_manager_secret_version.wake[0].version
            }
          }
        }
      }

      env {
        name = "HYPERBOLA_ACTIVITY_KEY"
        value_source {
          secret_key_ref {
            secret = google_secret_manager_secret.activity.secret_id
            # Pinned like the API keys: a new key rolls both services on apply.
            version = google_secret_manager_secret_version.activity.version
          }
        }
      }

      dynamic "env" {
        for_each = local.redis_auth ? ["REDIS_PASSWORD"] : []
        content {
          name = env.value
          value_source {
            secret_key_ref {
              secret = google_secret_manager_secret.redis_auth[0].secret_id
              # Pinned: a rotated AUTH string rolls both services on apply.
              version = google_secret_manager_secret_version.redis_auth[0].version
            }
          }
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.api_keys,
    google_secret_manager_secret_iam_member.named_api_keys,
    google_secret_manager_secret_iam_member.wake,
    google_secret_manager_secret_iam_member.activity,
    google_secret_manager_secret_iam_member.redis_auth,
  ]
}

# session-api is public at the network level; every route but /health and /ready requires X-API-Key.
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
