package kube

import (
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

var badIDs = []string{"", "ab12cd3", "ab12cd345", "1b12cd34", "AB12CD34", "ab-2cd34", "ab12cd3.", "../../x1", "ab12cd3\n", "äb12cd34"}

// Every function that turns an id into a name, a label or an object refuses a bad id, with
// session.CheckID's error.
func TestBadIDsNeverBecomeNames(t *testing.T) {
	o := testOptions()
	for _, id := range badIDs {
		ws := testWorkspace()
		ws.ID = id
		b := testBackup()
		b.ID = id
		r := testRestore()
		r.ID = id
		calls := map[string]func() error{
			"NamesFor":          func() error { _, err := NamesFor(id); return err },
			"BackupJobName":     func() error { _, err := BackupJobName(id, 1); return err },
			"SelectorLabels":    func() error { _, err := SelectorLabels(id, ComponentWorkspace); return err },
			"Labels":            func() error { _, err := Labels(id, ComponentWorkspace, nil); return err },
			"SessionSelector":   func() error { _, err := SessionSelector(id); return err },
			"ComponentSelector": func() error { _, err := ComponentSelector(id, ComponentBackup); return err },
			"PVC":               func() error { _, err := PersistentVolumeClaim(ws, o); return err },
			"Deployment":        func() error { _, err := Deployment(ws, o); return err },
			"Service":           func() error { _, err := Service(ws, o); return err },
			"Ingress":           func() error { _, err := Ingress(ws, o); return err },
			"NetworkPolicy":     func() error { _, err := NetworkPolicy(ws, o); return err },
			"Secret":            func() error { _, err := Secret(ws, o); return err },
			"BackupJob":         func() error { _, err := BackupJob(b, o); return err },
			"RestoreJobName":    func() error { _, err := RestoreJobName(id, 1); return err },
			"RestoreJob":        func() error { _, err := RestoreJob(r, o); return err },
		}
		for name, call := range calls {
			err := call()
			if session.KindOf(err) != session.KindInvalid || session.FieldOf(err) != "uuid" {
				t.Errorf("%s(%q): err = %v, want session.CheckID's error", name, id, err)
			}
		}
	}
}

func TestNames(t *testing.T) {
	n, err := NamesFor("ab12cd34")
	if err != nil {
		t.Fatal(err)
	}
	want := Names{ID: "ab12cd34", Workspace: "vs-code-ab12cd34", Data: "vs-code-ab12cd34-data", Auth: "vs-code-ab12cd34-auth", TLS: "vs-code-ab12cd34-tls", HostPrefix: "vs-code-ab12cd34"}
	if n != want {
		t.Errorf("names = %+v, want %+v", n, want)
	}
	if h := n.Host("preview.hyperbola.in"); h != "vs-code-ab12cd34.preview.hyperbola.in" {
		t.Errorf("host = %s", h)
	}
	if j, _ := n.BackupJob(3); j != "vs-code-ab12cd34-backup-3" {
		t.Errorf("job = %s", j)
	}
	if _, err := n.BackupJob(-1); session.FieldOf(err) != "attempt" {
		t.Errorf("negative attempt: %v", err)
	}
	if j, _ := n.RestoreJob(2); j != "vs-code-ab12cd34-restore-2" {
		t.Errorf("restore job = %s", j)
	}
	if _, err := n.RestoreJob(-1); session.FieldOf(err) != "attempt" {
		t.Errorf("negative restore attempt: %v", err)
	}
	if s, _ := SessionSelector("ab12cd34"); s != "app.kubernetes.io/managed-by=hyperbola,hyperbola.dev/session=ab12cd34" {
		t.Errorf("selector = %s", s)
	}
	if f := BackupFile("ab12cd34", time.Date(2026, 11, 26, 3, 3, 4, 0, time.FixedZone("CET", 3600))); f != "ab12cd34-20261126T020304Z.zip" {
		t.Errorf("backup file = %s (must be UTC)", f)
	}
}
