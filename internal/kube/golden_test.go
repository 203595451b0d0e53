package kube

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml from the builders")

func testOptions() Options {
	return Options{
		Namespace:         "hyperbola",
		Domain:            "preview.hyperbola.in",
		Port:              8080,
		StorageClass:      "standard-rwo",
		IngressClass:      "nginx",
		ClusterIssuer:     "letsencrypt",
		IngressNamespace:  "ingress-nginx",
		BackupPVC:         "hyperbola-backups",
		BackupImage:       "localhost/hyperbola-backup:1",
		ActivatorService:  "hyperbola-activator",
		ActivatorHost:     "session-api-123456789012.us-central1.run.app",
		ActivatorCASecret: "hyperbola-activator-ca",
	}
}

func sleepingWorkspace() session.Workspace {
	ws := testWorkspace()
	ws.Replicas, ws.Activator = 0, true
	return ws
}

func testWorkspace() session.Workspace {
	return session.Workspace{
		ID:          "ab12cd34",
		UserID:      "alice@example.com",
		Image:       "codercom/code-server:4.96.4",
		Storage:     "5Gi",
		CPU:         "250m",
		Memory:      "256Mi",
		Labels:      map[string]string{"team": "web", "example.com/cost-center": "cc-42"},
		Replicas:    1,
		Password:    "correct-horse-battery-staple",
		CreatedAt:   time.Date(2026, 11, 26, 2, 3, 4, 0, time.UTC),
		IdleTimeout: 15 * time.Minute,
	}
}

func testBackup() BackupRequest {
	ws := testWorkspace()
	return BackupRequest{
		ID:      ws.ID,
		Attempt: 2,
		Time:    time.Date(2026, 11, 27, 8, 9, 10, 0, time.UTC),
		UserID:  ws.UserID,
		Labels:  ws.Labels,
	}
}

// golden compares got (built without err), as YAML, with testdata/<name>.golden.yaml (rewritten with -update), and
// checks that it decodes strictly into the typed object typed (no misspelt field).
func golden(t *testing.T, name string, got any, err error, typed any) {
	t.Helper()
	if err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	js, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("marshal %s: %v", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(typed); err != nil {
		t.Fatalf("%s does not decode into %T: %v", name, typed, err)
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		t.Fatalf("yaml %s: %v", name, err)
	}
	path := filepath.Join("testdata", name+".golden.yaml")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, y, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/kube/ -run Golden -update)", err)
	}
	if !bytes.Equal(y, want) {
		t.Errorf("%s differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, path, y, want)
	}
}

func roundTrip(t *testing.T, ac, typed any) {
	t.Helper()
	js, err := json.Marshal(ac)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, typed); err != nil {
		t.Fatal(err)
	}
}
