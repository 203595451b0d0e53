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

# The usage report (GET /usage?user_id=...) selects a user's sessions still alive at the start
# of the window: user_id == X and active_until >= from. Firestore needs a composite index for
# an equality plus a range filter on two fields (the emulator does not enforce it).
resource "google_firestore_index" "sessions_by_user_active_until" {
  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = "sessions"

  fields {
    field_path = "user_id"
    order      = "ASCENDING"
  }

  fields {
    field_path = "active_until"
    order      = "ASCENDING"
  }
}
