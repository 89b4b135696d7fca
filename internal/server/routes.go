package server

import (
	"net/http"
)

// routes is the server's whole route table; api/openapi.yaml documents it.
// Parts that are not configured are absent, and their paths fall through
// to ingest's JSON 404.
type routes struct {
	ingest    http.Handler // /v1/submit, /v1/deletion, /healthz, /readyz, /metrics and the 404
	admin     http.Handler // /v1/admin/: once an operator token exists
	dashboard http.Handler // /dashboard, /v1/reports/: with a dashboard token
	forward   http.Handler // /readyz/forward: with forwarders
}

func (r routes) mux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, p := range []string{"/v1/submit", "/v1/deletion", "/healthz", "/readyz", "/metrics", "/"} {
		mux.Handle(p, r.ingest)
	}
	if r.admin != nil {
		mux.Handle("/v1/admin/", r.admin)
	}
	if r.dashboard != nil {
		mux.Handle("/dashboard", r.dashboard)
		mux.Handle("/dashboard/", r.dashboard)
		mux.Handle("/v1/reports/", r.dashboard)
	}
	if r.forward != nil {
		mux.Handle("GET /readyz/forward", r.forward)
	}
	return mux
}
