package provider

import (
	"context"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// core is the real session core on sessiontest's in-memory ports, as the provider's unit
// tests use it: the provider calls the Spy (which counts every call per operation); the test
// reads and changes sessions out of band through the Service itself, uncounted. Pods become
// ready and backups succeed at once unless the test says otherwise (SetAutoReady,
// SetAutoBackupFor).
type core struct {
	*sessiontest.Fakes
	svc *session.Service
	spy *sessiontest.Spy
}

func newCore(t *testing.T) *core {
	t.Helper()
	return newCoreWith(t, session.Options{})
}

// newCoreWith is newCore with the service's options (limits, say).
func newCoreWith(t *testing.T, opts session.Options) *core {
	t.Helper()
	f := sessiontest.New()
	f.Cluster.SetAutoReady(true)
	f.Cluster.SetAutoBackup(session.BackupSucceeded)
	svc := f.Service(opts)
	return &core{Fakes: f, svc: svc, spy: sessiontest.NewSpy(svc)}
}

// calls is how many times the provider called op ("Create", "Get", ...; "" for every op).
func (c *core) calls(op string) int { return len(c.spy.Calls(op)) }

// session reads session id as the store holds it, without moving its pending step.
func (c *core) session(id string) (*session.Session, error) {
	return c.Store.Get(context.Background(), id)
}
