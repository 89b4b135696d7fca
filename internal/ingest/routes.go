package ingest

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/provisionhq/provision/internal/routemux"
	"github.com/provisionhq/provision/internal/wire"
)

// routes is the whole API surface, documented in api/openapi.yaml.
func (s *Server) routes() {
	mux := routemux.New()
	mux.Handle("POST /v1/submit", s.instrument("submit", s.handleSubmit()))
	mux.Handle("POST /v1/deletion", s.instrument("deletion", s.limitClients(s.deletionLimit, s.handleDeletion())))
	mux.Handle("GET /healthz", s.instrument("healthz", s.handleHealthz()))
	mux.Handle("GET /readyz", s.instrument("readyz", s.handleReadyz()))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{}))
	mux.Handle("/v1/submit", methodNotAllowed("POST"))
	mux.Handle("/v1/deletion", methodNotAllowed("POST"))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, errorf(http.StatusNotFound, wire.CodeNotFound, "no such endpoint"))
	}))
	s.mux = mux
}

// Patterns lists the routes the server serves, as http.ServeMux patterns.
func (s *Server) Patterns() []string { return s.mux.Patterns() }

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, errorf(http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed, "use "+allow))
	})
}
