output "host" {
  description = "Private IP of the instance (REDIS_HOST)."
  value       = google_redis_instance.this.host
}

output "port" {
  description = "Port of the instance (REDIS_PORT)."
  value       = google_redis_instance.this.port
}

output "tier" {
  description = "Tier the instance runs in."
  value       = google_redis_instance.this.tier
}
