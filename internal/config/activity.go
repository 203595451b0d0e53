package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
)

// The activity settings' defaults: a process using half a core for a minute is a build or a
// test run, not an idle language server; five minutes between two reads of the state keeps a
// thousand idle workspaces at a few requests a second, and the extension reads sooner when
// its sleep is near.
const (
	DefaultActivityCPUThreshold = 0.5
	DefaultActivitySyncSeconds  = 300
)

// The bounds of HYPERBOLA_ACTIVITY_SYNC_SECONDS: a read every few seconds from every
// workspace would cost more than it tells; one a day would never notice a changed deadline.
const (
	MinActivitySyncSeconds = 10
	MaxActivitySyncSeconds = 86400
)

// activity reads the activity credential's key (HYPERBOLA_ACTIVITY_KEY, or the file
// HYPERBOLA_ACTIVITY_KEY_FILE names, as HYPERBOLA_API_KEYS_FILE for the named keys) and the
// extension's settings.
func (r *reader) activity(c *Config) {
	inline, path := r.str("HYPERBOLA_ACTIVITY_KEY", ""), r.str("HYPERBOLA_ACTIVITY_KEY_FILE", "")
	switch {
	case inline != "" && path != "":
		r.fail(fmt.Errorf("HYPERBOLA_ACTIVITY_KEY and HYPERBOLA_ACTIVITY_KEY_FILE are both set: set one"))
	case path != "":
		c.ActivityKeyFrom = "HYPERBOLA_ACTIVITY_KEY_FILE"
		b, err := os.ReadFile(path)
		if err != nil {
			r.fail(fmt.Errorf("HYPERBOLA_ACTIVITY_KEY_FILE: %w", err))
			break
		}
		c.ActivityKey = strings.TrimSpace(string(b)) // a file usually ends with a newline
	case inline != "":
		c.ActivityKeyFrom, c.ActivityKey = "HYPERBOLA_ACTIVITY_KEY", inline
	}
	c.ActivityURL = strings.TrimRight(r.str(activity.EnvURL, ""), "/")
	c.ActivityCPUThreshold = r.float(activity.EnvCPUThreshold, DefaultActivityCPUThreshold)
	c.ActivitySyncSeconds = r.int(activity.EnvSyncSeconds, DefaultActivitySyncSeconds)
}

// validateActivity checks the activity settings, naming the variable at fault (never the key).
func (c *Config) validateActivity() error {
	if c.ActivityKey != "" && len(c.ActivityKey) < activity.MinKeyBytes {
		return fmt.Errorf("%s is %d bytes: want at least %d random bytes (such as 48 letters and digits)",
			c.ActivityKeyFrom, len(c.ActivityKey), activity.MinKeyBytes)
	}
	if c.ActivityCPUThreshold <= 0 {
		return fmt.Errorf("%s must be a positive number of cores, such as 0.5", activity.EnvCPUThreshold)
	}
	if c.ActivitySyncSeconds < MinActivitySyncSeconds || c.ActivitySyncSeconds > MaxActivitySyncSeconds {
		return fmt.Errorf("%s must be between %d and %d", activity.EnvSyncSeconds, MinActivitySyncSeconds, MaxActivitySyncSeconds)
	}
	if c.ActivityURL == "" {
		return nil
	}
	if err := checkActivityURL(c.ActivityURL); err != nil {
		return fmt.Errorf("%s=%q: %w", activity.EnvURL, c.ActivityURL, err)
	}
	if c.ActivityKey == "" {
		// Workspaces would get the URL and no credential: every report would be a 401.
		return fmt.Errorf("%s is set without HYPERBOLA_ACTIVITY_KEY (or HYPERBOLA_ACTIVITY_KEY_FILE): set the key, or unset the URL", activity.EnvURL)
	}
	return nil
}

// checkActivityURL accepts an absolute http(s) URL with a host and nothing a workspace would
// have to strip (credentials, a query, a fragment).
func checkActivityURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("want an absolute URL such as https://session-api-123.us-central1.run.app: %w", err)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("want an http or https URL such as https://session-api-123.us-central1.run.app")
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("the URL has no host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Errorf("the URL must hold no credentials, query or fragment")
	}
	return nil
}
