# Firestore in native mode: durable session records, events and usage (internal/events).
# The app uses the project's "(default)" database through GOOGLE_CLOUD_PROJECT.
# A project can have only one "(default)" database; if one already exists (for example from
# App Engine), import it instead of creating it (see docs/operations/deploy.md).
resource "google_firestore_database" "this" {
  project                 = var.project_id
  name                    = var.database_id
  location_id             = var.location_id
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # DELETE lets `terraform destroy` remove the database once protection is off; with
  # ABANDON it would stay behind, and a later apply could not recreate "(default)".
  deletion_policy = var.deletion_protection ? "ABANDON" : "DELETE"
}
