package sweep_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// fakeGateway counts EnsureGateway calls and answers err.
type fakeGateway struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (f *fakeGateway) EnsureGateway(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.err
}

// Every sweep keeps the shared Gateway; a failure is counted and named in the report, and
// never fails the sweep of the sessions.
func TestRunKeepsTheGatewayEverySweep(t *testing.T) {
	w := newWorld()
	g := &fakeGateway{}
	s := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: &heartbeats{}, Now: w.Clock.Now, Logger: quiet(), Gateway: g},
		sweep.Options{})
	for i := 1; i <= 2; i++ {
		rep, err := s.Run(context.Background())
		if err != nil || rep.Errors != 0 || rep.GatewayError != "" || g.calls != i {
			t.Fatalf("sweep %d: %+v %v (%d calls)", i, rep, err, g.calls)
		}
	}
	g.err = errors.New("gateways.gateway.networking.k8s.io is forbidden")
	rep, err := s.Run(context.Background())
	if err != nil || rep.Errors != 1 || rep.GatewayError != g.err.Error() {
		t.Fatalf("failed gateway: %+v %v", rep, err)
	}
	w.Store.HoldLease("sweep", true)
	if rep, _ := s.Run(context.Background()); !rep.Skipped || g.calls != 3 {
		t.Fatalf("skipped sweep kept the gateway: %+v, %d calls", rep, g.calls)
	}
}
