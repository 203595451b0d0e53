# Every running workspace of one user (all pages are read).
data "hyperbola_workspaces" "ada_running" {
  user_id = "ada@example.com"
  status  = "running"
}

# Every workspace, whoever made it.
data "hyperbola_workspaces" "all" {}

output "ada_running_urls" {
  value = [for w in data.hyperbola_workspaces.ada_running.workspaces : w.workspace_url]
}

output "workspace_count" {
  value = length(data.hyperbola_workspaces.all.ids)
}
