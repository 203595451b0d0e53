package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Firestore is the Firestore emulator (the jar shipped with the gcloud SDK), started for one
// test package. Host is what FIRESTORE_EMULATOR_HOST takes.
type Firestore struct {
	Host string
	cmd  *exec.Cmd
	dir  string
}

// firestoreJar finds the emulator jar: $FIRESTORE_EMULATOR_JAR, the usual SDK roots, or the
// root `gcloud info` reports.
func firestoreJar() (string, error) {
	const rel = "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
	if j := os.Getenv("FIRESTORE_EMULATOR_JAR"); j != "" {
		return j, nil
	}
	for _, root := range []string{"/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk"} {
		if _, err := os.Stat(filepath.Join(root, rel)); err == nil {
			return filepath.Join(root, rel), nil
		}
	}
	out, err := exec.Command("gcloud", "info", "--format=value(installation.sdk_root)").Output()
	if err == nil {
		j := filepath.Join(strings.TrimSpace(string(out)), rel)
		if _, err := os.Stat(j); err == nil {
			return j, nil
		}
	}
	return "", fmt.Errorf("firestore emulator jar not found (install google-cloud-cli-firestore-emulator or set FIRESTORE_EMULATOR_JAR)")
}

// StartFirestore starts the emulator on a free loopback port and sets FIRESTORE_EMULATOR_HOST
// for this process, which the Firestore client reads.
func StartFirestore(ctx context.Context) (*Firestore, error) {
	jar, err := firestoreJar()
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("java not found (Java 17 runs the emulator): %w", err)
	}
	dir, err := os.MkdirTemp("", "hyperbola-firestore-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	srv := server{what: "the firestore emulator", bin: java, dir: dir, log: "firestore.log", tries: 3, patience: 60 * time.Second,
		args: func(port string) []string {
			return []string{"-Xmx512m", "-cp", jar, "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start",
				"--host=127.0.0.1", "--port=" + port, "--database-mode=firestore-native"}
		},
		ready: func(host string) func() error { return httpOK("http://" + host + "/") },
	}
	host, cmd, err := srv.start(ctx)
	if err != nil {
		return nil, err
	}
	_ = os.Setenv("FIRESTORE_EMULATOR_HOST", host)
	return &Firestore{Host: host, cmd: cmd, dir: dir}, nil
}

// Stop stops the emulator.
func (f *Firestore) Stop() {
	if f == nil {
		return
	}
	stopChild(f.cmd, 5*time.Second)
	_ = os.RemoveAll(f.dir)
}

// Kill stops the emulator at once, as a crash would (tests of what a lost Firestore does).
func (f *Firestore) Kill() { stopChild(f.cmd, 0) }

// Reset deletes every document of project.
func (f *Firestore) Reset(ctx context.Context, project string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete,
		"http://"+f.Host+"/emulator/v1/projects/"+project+"/databases/(default)/documents", nil)
	if err != nil {
		return fmt.Errorf("reset request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("resetting firestore project %s: %w", project, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("resetting firestore project %s: %s", project, resp.Status)
	}
	return nil
}

// FirestoreProject returns a project id unique to t (so tests never see each other's
// documents), reset when t ends.
func (e *Env) FirestoreProject(t testing.TB) string {
	t.Helper()
	need(t, e, "firestore emulator", e != nil && e.Firestore != nil)
	p := UniqueName("test")
	t.Cleanup(func() { _ = e.Firestore.Reset(context.Background(), p) })
	return p
}
