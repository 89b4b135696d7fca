package forward

import (
	"context"
	"sync"
)

// Group runs several forwarders and reports on them together, for the
// server's lifecycle and its /readyz details.
type Group []*Forwarder

// Run runs every forwarder until ctx ends and returns when all stopped.
func (g Group) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, f := range g {
		wg.Go(func() { _ = f.Run(ctx) })
	}
	wg.Wait()
}

// Status returns each forwarder's status and whether all are healthy. A
// forwarder that is behind or failing makes the group unhealthy; ingest is
// not affected by it, so a server may report it as a detail rather than
// fail readiness.
func (g Group) Status(ctx context.Context) ([]Status, bool) {
	out := make([]Status, 0, len(g))
	healthy := true
	for _, f := range g {
		s := f.Status(ctx)
		healthy = healthy && s.Healthy
		out = append(out, s)
	}
	return out, healthy
}
