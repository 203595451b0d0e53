output "database_id" {
  description = "Database id."
  value       = google_firestore_database.this.name
}

output "location_id" {
  description = "Location of the database."
  value       = google_firestore_database.this.location_id
}
