package config

import (
	"os"
	"strings"
	"testing"
)

func TestActivitySettings(t *testing.T) {
	key := strings.Repeat("k", 48)
	c, err := FromLookup(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ActivityKey != "" || c.ActivityURL != "" || c.ActivityCPUThreshold != 0.5 || c.ActivitySyncSeconds != 300 {
		t.Fatalf("defaults: %q %q %v %d", c.ActivityKey, c.ActivityURL, c.ActivityCPUThreshold, c.ActivitySyncSeconds)
	}
	c, err = FromLookup(lookup(map[string]string{
		"HYPERBOLA_ACTIVITY_KEY": key, "HYPERBOLA_ACTIVITY_URL": "https://api.example.test/",
		"HYPERBOLA_ACTIVITY_CPU_THRESHOLD": "1.5", "HYPERBOLA_ACTIVITY_SYNC_SECONDS": "60",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ActivityKey != key || c.ActivityKeyFrom != "HYPERBOLA_ACTIVITY_KEY" || c.ActivityURL != "https://api.example.test" ||
		c.ActivityCPUThreshold != 1.5 || c.ActivitySyncSeconds != 60 {
		t.Fatalf("set: %+v", c)
	}
	// a key alone: credentials are made (and accepted), workspaces are not told yet
	if c, err = FromLookup(lookup(map[string]string{"HYPERBOLA_ACTIVITY_KEY": key})); err != nil || c.ActivityURL != "" {
		t.Fatalf("key alone: %v", err)
	}
	file := t.TempDir() + "/activity.key"
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = FromLookup(lookup(map[string]string{"HYPERBOLA_ACTIVITY_KEY_FILE": file}))
	if err != nil || c.ActivityKey != key || c.ActivityKeyFrom != "HYPERBOLA_ACTIVITY_KEY_FILE" {
		t.Fatalf("from a file: %v %q", err, c.ActivityKeyFrom)
	}
	short := strings.Repeat("s", 31)
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"short key":         {map[string]string{"HYPERBOLA_ACTIVITY_KEY": short}, "HYPERBOLA_ACTIVITY_KEY is 31 bytes"},
		"short key file":    {map[string]string{"HYPERBOLA_ACTIVITY_KEY_FILE": writeFile(t, short)}, "HYPERBOLA_ACTIVITY_KEY_FILE is 31 bytes"},
		"missing file":      {map[string]string{"HYPERBOLA_ACTIVITY_KEY_FILE": "/nonexistent/key"}, "HYPERBOLA_ACTIVITY_KEY_FILE: open"},
		"both":              {map[string]string{"HYPERBOLA_ACTIVITY_KEY": key, "HYPERBOLA_ACTIVITY_KEY_FILE": file}, "both set"},
		"url without key":   {map[string]string{"HYPERBOLA_ACTIVITY_URL": "https://api.example.test"}, "HYPERBOLA_ACTIVITY_URL is set without HYPERBOLA_ACTIVITY_KEY"},
		"relative url":      {map[string]string{"HYPERBOLA_ACTIVITY_KEY": key, "HYPERBOLA_ACTIVITY_URL": "api.example.test"}, "HYPERBOLA_ACTIVITY_URL="},
		"ftp url":           {map[string]string{"HYPERBOLA_ACTIVITY_KEY": key, "HYPERBOLA_ACTIVITY_URL": "ftp://api.example.test"}, "HYPERBOLA_ACTIVITY_URL="},
		"url with query":    {map[string]string{"HYPERBOLA_ACTIVITY_KEY": key, "HYPERBOLA_ACTIVITY_URL": "https://api.example.test/?a=1"}, "HYPERBOLA_ACTIVITY_URL="},
		"url with userinfo": {map[string]string{"HYPERBOLA_ACTIVITY_KEY": key, "HYPERBOLA_ACTIVITY_URL": "https://u:p@api.example.test"}, "HYPERBOLA_ACTIVITY_URL="},
		"zero threshold":    {map[string]string{"HYPERBOLA_ACTIVITY_CPU_THRESHOLD": "0"}, "HYPERBOLA_ACTIVITY_CPU_THRESHOLD"},
		"bad threshold":     {map[string]string{"HYPERBOLA_ACTIVITY_CPU_THRESHOLD": "half"}, "HYPERBOLA_ACTIVITY_CPU_THRESHOLD"},
		"sync too often":    {map[string]string{"HYPERBOLA_ACTIVITY_SYNC_SECONDS": "1"}, "HYPERBOLA_ACTIVITY_SYNC_SECONDS"},
		"sync not a number": {map[string]string{"HYPERBOLA_ACTIVITY_SYNC_SECONDS": "5m"}, "HYPERBOLA_ACTIVITY_SYNC_SECONDS"},
	} {
		_, err := FromLookup(lookup(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), short) || strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v, want %q (and never the key)", name, err, tc.want)
		}
	}
}

func writeFile(t *testing.T, s string) string {
	t.Helper()
	p := t.TempDir() + "/f"
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
