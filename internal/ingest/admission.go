package ingest

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

// admission bounds the work in flight so that overload is answered with
// 429/503 rather than with growing memory and latency: a fixed number of
// submission slots, and a byte budget that decompression draws from as it
// streams.
type admission struct {
	slots   chan struct{}
	wait    time.Duration
	budget  int64
	inUse   atomic.Int64
	waiting atomic.Int64
}

func newAdmission(l Limits) *admission {
	return &admission{slots: make(chan struct{}, l.MaxInFlight), wait: l.QueueTimeout, budget: l.MemoryBudget}
}

// acquire takes a slot, waiting at most the queue timeout. Only a bounded
// number of requests may wait, so that a flood does not pile up goroutines
// holding connections.
func (a *admission) acquire(ctx context.Context) *apiError {
	select {
	case a.slots <- struct{}{}:
		return nil
	default:
	}
	if a.wait <= 0 || a.waiting.Add(1) > int64(cap(a.slots)) {
		if a.wait > 0 {
			a.waiting.Add(-1)
		}
		return retryable(http.StatusTooManyRequests, wire.CodeOverloaded, "too many submissions in flight", 1)
	}
	defer a.waiting.Add(-1)
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return nil
	case <-t.C:
		return retryable(http.StatusTooManyRequests, wire.CodeOverloaded, "too many submissions in flight", 1)
	case <-ctx.Done():
		return retryable(http.StatusServiceUnavailable, wire.CodeUnavailable, "request canceled while waiting", 1)
	}
}

func (a *admission) release() { <-a.slots }

// reservation is one request's share of the memory budget.
type reservation struct {
	a *admission
	n int64
}

// grow reserves n more bytes, failing when the budget is spent.
func (r *reservation) grow(n int64) *apiError {
	if r.a.inUse.Add(n) > r.a.budget {
		r.a.inUse.Add(-n)
		return retryable(http.StatusServiceUnavailable, wire.CodeOverloaded, "server memory budget for submissions is spent", 1)
	}
	r.n += n
	return nil
}

func (r *reservation) free() {
	r.a.inUse.Add(-r.n)
	r.n = 0
}
