package kube

import (
	"strconv"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// FieldManager is the one server-side apply field manager of Hyperbola.
const FieldManager = "hyperbola"

// PasswordKey is the key of the IDE password in the session's Secret (and the name of the
// environment variable code-server reads it from).
const PasswordKey = "PASSWORD"

// Names are the object names of one session. Build them with NamesFor.
type Names struct {
	ID         string
	Workspace  string // Deployment, Service, Ingress, NetworkPolicy: vs-code-<id>
	Data       string // PVC: vs-code-<id>-data
	Auth       string // Secret: vs-code-<id>-auth
	TLS        string // the Ingress's TLS Secret (written by cert-manager): vs-code-<id>-tls
	HostPrefix string // the first DNS label of the workspace's host: vs-code-<id>
}

// NamesFor returns the object names of session id, or session.CheckID's error.
func NamesFor(id string) (Names, error) {
	if err := session.CheckID(id); err != nil {
		return Names{}, err
	}
	base := "vs-code-" + id
	return Names{
		ID:         id,
		Workspace:  base,
		Data:       base + "-data",
		Auth:       base + "-auth",
		TLS:        base + "-tls",
		HostPrefix: base,
	}, nil
}

// Host is the workspace's DNS name under domain: vs-code-<id>.<domain>.
func (n Names) Host(domain string) string { return n.HostPrefix + "." + domain }

// BackupJob names the backup Job of an attempt: vs-code-<id>-backup-<attempt>.
func (n Names) BackupJob(attempt int) (string, error) {
	if attempt < 0 {
		return "", session.Invalid("attempt", "backup attempt must not be negative")
	}
	return n.Workspace + "-backup-" + strconv.Itoa(attempt), nil
}

// BackupJobName names the backup Job of an attempt of session id.
func BackupJobName(id string, attempt int) (string, error) {
	n, err := NamesFor(id)
	if err != nil {
		return "", err
	}
	return n.BackupJob(attempt)
}

// RestoreJob names the restore Job of an attempt: vs-code-<id>-restore-<attempt>.
func (n Names) RestoreJob(attempt int) (string, error) {
	if attempt < 0 {
		return "", session.Invalid("attempt", "restore attempt must not be negative")
	}
	return n.Workspace + "-restore-" + strconv.Itoa(attempt), nil
}

// RestoreJobName names the restore Job of an attempt of session id.
func RestoreJobName(id string, attempt int) (string, error) {
	n, err := NamesFor(id)
	if err != nil {
		return "", err
	}
	return n.RestoreJob(attempt)
}
