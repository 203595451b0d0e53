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

# The usage report reads every event within its window in one collection-group query over the
# sessions' "events" subcollections (at >= from, at < to), instead of two queries per session.
# Firestore indexes single fields per collection only, unless told otherwise: this adds the
# collection-group index on "at" (ascending, the one the query needs) and keeps the collection
# ones the per-session reads use (at, both orders: the last event before a window).
resource "google_firestore_field" "events_at" {
  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = "events"
  field      = "at"

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION_GROUP"
    }
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION"
    }
    indexes {
      order       = "DESCENDING"
      query_scope = "COLLECTION"
    }
  }
}

# The per-user usage report (GET /usage?user_id=...) reads a user's events within the window:
# user_id == X and a range on at, across every session's "events": a composite
# collection-group index.
resource "google_firestore_index" "events_by_user_at" {
  project     = var.project_id
  database    = google_firestore_database.this.name
  collection  = "events"
  query_scope = "COLLECTION_GROUP"

  fields {
    field_path = "user_id"
    order      = "ASCENDING"
  }

  fields {
    field_path = "at"
    order      = "ASCENDING"
  }
}
