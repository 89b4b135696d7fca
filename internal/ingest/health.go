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

// handleReadyz answers whether submissions can be taken now: not draining,
// the store writable, and the log not stalled by failing appends.
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
		if s.appendFailing.Load() {
			notReady("appends to the log are failing")
			return
		}
		if s.deps.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := s.deps.Ready(ctx); err != nil {
				s.log.Warn("store not ready", "err", err)
				notReady("store not writable")
				return
			}
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
