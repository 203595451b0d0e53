output "enabled_services" {
  description = "The API names that are enabled; depend on this output to order work after enablement."
  value       = sort([for s in google_project_service.this : s.service])
}
