# Every backup of one user's deleted workspaces, newest first (all pages are read).
data "hyperbola_backups" "ada" {
  user_id = "ada@example.com"
}

# The backups of one deleted workspace.
data "hyperbola_backups" "old_dev" {
  session_id = "ab12cd34"
}

# Restore the latest backup of that workspace into a new one. A deleted workspace makes no
# new backups, so backups[0] stays the same one and the workspace is not replaced later;
# backups expire after the deployment's retention, so write the id out once it is restored.
resource "hyperbola_workspace" "dev" {
  user_id      = "ada@example.com"
  restore_from = data.hyperbola_backups.old_dev.backups[0].id
}

output "ada_backups" {
  value = { for b in data.hyperbola_backups.ada.backups : b.id => b.location }
}
