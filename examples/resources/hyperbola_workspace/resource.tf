# A workspace with its own size, resources and idle timeout.
resource "hyperbola_workspace" "dev" {
  user_id      = "ada@example.com"
  storage      = "10Gi" # can grow in place later, never shrink
  cpu          = "500m"
  memory       = "1Gi"
  idle_timeout = "30m" # the idle sweep puts it to sleep after 30 minutes without activity
  ttl          = "0"   # long-lived: never expires (unset, SESSION_TTL applies and the sweep deletes it)

  # a browser tab left open without use keeps it awake at most 4 hours ("0": no cap)
  idle_connected_max = "4h"
  labels = {
    team = "platform"
  }

  timeouts {
    create = "10m"
    delete = "30m" # the backup copies the whole volume
  }
}

# A workspace per student, created asleep: it wakes with `state = "running"` or
# through the API. `state` pinned here means an apply puts a woken one back to sleep.
resource "hyperbola_workspace" "students" {
  for_each = toset(["alan@example.com", "grace@example.com"])

  user_id = each.key
  state   = "sleeping"
  labels = {
    course = "go-101"
  }
}

# A workspace brought back from the backup its deletion made: restore_from names the deleted
# workspace (its latest backup), or a backup's id or location as hyperbola_backups lists them.
# The volume is filled before the workspace starts, at least as large as the original's.
# restored_from reports the backup used; restore_from stays as written.
resource "hyperbola_workspace" "recovered" {
  user_id      = "ada@example.com" # the backup's owner: another user's backup is refused
  restore_from = "ab12cd34"        # the id of ada's deleted workspace

  timeouts {
    create = "30m" # the restore unzips the whole backup first
  }
}

output "dev_url" {
  value = hyperbola_workspace.dev.workspace_url
}

output "dev_password" {
  value     = hyperbola_workspace.dev.password
  sensitive = true
}

output "recovered_from" {
  value = hyperbola_workspace.recovered.restored_from
}
