package ingest

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

// handleHealthz answers whether the process is alive and serving.
func (s *Server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// notReadyAfterFailure is how long a failed append keeps a server without
// a store probe out of rotation.
const notReadyAfterFailure = 5 * time.Second

// handleReadyz answers whether submissions can be taken now: not draining,
// and the store writable by its own probe (or, without one, no append
// failed in the last few seconds).
func (s *Server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		notReady := func(reason string) {
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not_ready", "reason": reason})
		}
		if s.draining.Load() {
			notReady("shutting down")
			return
		}
		failed := s.appendFailed.Load()
		if s.deps.Ready == nil {
			// Nothing to probe: a failed append keeps the node out of
			// rotation for a while, then traffic is let back in to try.
			if failed != 0 && time.Since(time.Unix(0, failed)) < notReadyAfterFailure {
				notReady("appends to the log are failing")
				return
			}
		} else if err := s.probeStore(r.Context()); err != nil {
			notReady("store not writable")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// readyProbeTTL is how long a passing store probe answers /readyz. The
// probe is a synced write: a load balancer polling every second, or a
// flood of /readyz, must not become a flood of fsyncs.
const readyProbeTTL = time.Second

// readyProbe runs the store's probe for /readyz, one at a time.
type readyProbe struct {
	mu     sync.Mutex // held while probing, so concurrent callers share one probe
	at     time.Time  // when the last probe finished
	err    error      // and its result
	passed time.Time  // when a probe last passed; zero after a failure
}

// probeStore reports whether the store takes writes now. The store itself
// decides, so that a node whose disk was full becomes ready again when
// space returns, without waiting for an upload a load balancer would not
// send it. A pass is reused for readyProbeTTL unless an append has failed
// since; a failure is not reused, so recovery shows at the next request,
// but callers that waited for a probe in progress share its answer.
func (s *Server) probeStore(ctx context.Context) error {
	p := &s.probe
	arrived := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at.After(arrived) {
		return p.err
	}
	failed := s.appendFailed.Load()
	if !p.passed.IsZero() && time.Since(p.passed) < readyProbeTTL && failed < p.passed.UnixNano() {
		return nil
	}
	// Others may wait for this answer: a caller that hangs up does not
	// cut the probe short for them.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := s.deps.Ready(ctx)
	p.at, p.err = time.Now(), err
	if err != nil {
		p.passed = time.Time{}
		s.log.Warn("store not ready", "err", err)
		return err
	}
	p.passed = p.at
	s.appendFailed.CompareAndSwap(failed, 0)
	return nil
}

// handleDeletion serves erasure requests when a handler is plugged in.
func (s *Server) handleDeletion() http.Handler {
	if s.deps.Deletion != nil {
		return s.deps.Deletion
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, errorf(http.StatusNotImplemented, wire.CodeNotImplemented, "deletion requests are not served by this server yet"))
	})
}
