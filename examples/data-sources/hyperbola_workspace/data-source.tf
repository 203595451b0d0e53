data "hyperbola_workspace" "dev" {
  id = var.workspace_id
}

variable "workspace_id" {
  type        = string
  description = "Id of an existing workspace, e.g. ab12cd34."
}

output "dev" {
  value = "${data.hyperbola_workspace.dev.workspace_url} is ${data.hyperbola_workspace.dev.status}"
}
