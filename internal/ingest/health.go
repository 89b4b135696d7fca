package ingest

import (
	"context"
	"net/http"
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
		} else {
			// The store itself decides, so that a node whose disk was
			// full becomes ready again when space returns, without
			// waiting for an upload a load balancer would not send it.
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := s.deps.Ready(ctx); err != nil {
				s.log.Warn("store not ready", "err", err)
				notReady("store not writable")
				return
			}
			s.appendFailed.CompareAndSwap(failed, 0)
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
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
