package sessiontest

import (
	"context"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// SetAutoBackupFor overrides SetAutoBackup for one session's later Jobs only.
func TestCluster_SetAutoBackupFor(t *testing.T) {
	ctx := context.Background()
	c := NewCluster(nil)
	for _, id := range []string{"aaaaaaaa", "bbbbbbbb"} {
		if err := c.Apply(ctx, session.Workspace{ID: id, Storage: "1Gi"}); err != nil {
			t.Fatal(err)
		}
	}
	c.SetAutoBackup(session.BackupSucceeded)
	c.SetAutoBackupFor("aaaaaaaa", session.BackupFailed)
	for _, tc := range []struct {
		id      string
		attempt int
		want    session.BackupPhase
	}{
		{"aaaaaaaa", 1, session.BackupFailed},
		{"bbbbbbbb", 1, session.BackupSucceeded},
	} {
		b, err := c.StartBackup(ctx, tc.id, tc.attempt)
		if err != nil || b.Phase != tc.want {
			t.Errorf("backup of %s #%d: %+v %v, want %s", tc.id, tc.attempt, b, err, tc.want)
		}
	}
	c.SetAutoBackupFor("aaaaaaaa", "")
	if b, err := c.StartBackup(ctx, "aaaaaaaa", 2); err != nil || b.Phase != session.BackupRunning {
		t.Errorf("second backup: %+v %v, want running until FinishBackup", b, err)
	}
	if b, _ := c.BackupStatus(ctx, "aaaaaaaa", 1); b.Phase != session.BackupFailed || b.Reason == "" {
		t.Errorf("the first Job changed: %+v", b)
	}
}
