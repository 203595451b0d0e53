# One user's usage in January 2026 (the window is [from, to)).
data "hyperbola_usage" "ada_january" {
  user_id = "ada@example.com"
  from    = "2026-01-01T00:00:00Z"
  to      = "2026-02-01T00:00:00Z"
}

# Everyone's usage over the last 30 days, as of the plan (a window is at most 93 days).
data "hyperbola_usage" "last_30_days" {
  from = timeadd(plantimestamp(), "-720h")
}

output "ada_january" {
  value = "${data.hyperbola_usage.ada_january.total.running_hours} h running, ${data.hyperbola_usage.ada_january.total.estimated_cost} ${data.hyperbola_usage.ada_january.currency} (${data.hyperbola_usage.ada_january.total.savings_percent}% saved by sleeping)"
}

# Estimated cost per user.
output "cost_by_user" {
  value = { for u in data.hyperbola_usage.last_30_days.users : u.user_id => u.estimated_cost }
}

# Workspaces that ran more than 8 hours: candidates for a shorter idle_timeout.
output "long_running" {
  value = [for s in data.hyperbola_usage.last_30_days.sessions : s.id if s.running_hours > 8]
}

output "savings_last_30_days" {
  value = "${data.hyperbola_usage.last_30_days.total.savings_percent}% saved by sleeping (${data.hyperbola_usage.last_30_days.pending_events} events not yet counted)"
}

# What the cap on an open tab without use (idle_connected_max) saved: hours asleep after those
# sleeps, an upper bound of what the heartbeat rule alone would have kept running.
output "saved_by_the_cap_last_30_days" {
  value = "${data.hyperbola_usage.last_30_days.total.saved_hours} h saved in ${data.hyperbola_usage.last_30_days.total.slept_by_cap} sleeps of open, unused tabs"
}
