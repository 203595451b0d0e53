package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFromEnv(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		env     map[string]string
		wantErr string // a substring naming the variable; "" for none
		port    string
	}{
		"defaults":           {env: map[string]string{"HYPERBOLA_ACTIVATOR_HOST": "api.run.app"}, port: "8080"},
		"a port":             {env: map[string]string{"HYPERBOLA_ACTIVATOR_HOST": "api.run.app", "PORT": "9000"}, port: "9000"},
		"no host":            {env: map[string]string{}, wantErr: "HYPERBOLA_ACTIVATOR_HOST"},
		"a URL for a host":   {env: map[string]string{"HYPERBOLA_ACTIVATOR_HOST": "https://api.run.app"}, wantErr: "HYPERBOLA_ACTIVATOR_HOST"},
		"a bad port":         {env: map[string]string{"HYPERBOLA_ACTIVATOR_HOST": "api.run.app", "PORT": "http"}, wantErr: "PORT"},
		"a bad passthrough":  {env: map[string]string{"HYPERBOLA_ACTIVATOR_HOST": "api.run.app", "HYPERBOLA_RELAY_PASSTHROUGH_PORT": "70000"}, wantErr: "HYPERBOLA_RELAY_PASSTHROUGH_PORT"},
		"a missing CA file":  {env: map[string]string{"HYPERBOLA_ACTIVATOR_HOST": "api.run.app", "HYPERBOLA_ACTIVATOR_CA_FILE": filepath.Join(dir, "nope")}, wantErr: "HYPERBOLA_ACTIVATOR_CA_FILE"},
		"a CA file, not PEM": {env: map[string]string{"HYPERBOLA_ACTIVATOR_HOST": "api.run.app", "HYPERBOLA_ACTIVATOR_CA_FILE": notPEM}, wantErr: "HYPERBOLA_ACTIVATOR_CA_FILE"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			for _, k := range []string{"PORT", "HYPERBOLA_ACTIVATOR_HOST", "HYPERBOLA_ACTIVATOR_CA_FILE", "HYPERBOLA_RELAY_PASSTHROUGH_PORT"} {
				t.Setenv(k, tt.env[k])
			}
			s, err := fromEnv(slog.New(slog.DiscardHandler))
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr == "" && s.port != tt.port:
				t.Errorf("port %q, want %q", s.port, tt.port)
			}
		})
	}
}
