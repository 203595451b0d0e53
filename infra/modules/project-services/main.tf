# The Google APIs Hyperbola uses. Enabling is idempotent; destroying this module leaves the
# APIs on (disable_on_destroy = false), because turning an API off in a project can break
# things that are not managed here.
resource "google_project_service" "this" {
  for_each = toset(var.services)

  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = false
  disable_dependent_services = false
}
