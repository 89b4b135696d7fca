package server

import (
	"net/http"

	"github.com/provisionhq/provision/internal/routemux"
)

// routes is the server's whole route table; api/openapi.yaml documents it
// (TestOpenAPICoversTheRouteTable compares them). Parts that are not
// configured are absent, and their paths fall through to ingest's JSON
// 404.
type routes struct {
	ingest    http.Handler // /v1/submit, /v1/deletion, /healthz, /readyz, /metrics and the 404
	admin     http.Handler // /v1/admin/: once an operator token exists
	dashboard http.Handler // /dashboard, /v1/reports/: with a dashboard token
	forward   http.Handler // /readyz/forward: with forwarders
}

// mount is where a part of the table is mounted.
type mount struct {
	patterns []string
	h        http.Handler
}

func (r routes) mounts() []mount {
	return []mount{
		{[]string{"/v1/submit", "/v1/deletion", "/healthz", "/readyz", "/metrics", "/"}, r.ingest},
		{[]string{"/v1/admin/"}, r.admin},
		{[]string{"/dashboard", "/dashboard/", "/v1/reports/"}, r.dashboard},
		{[]string{"GET /readyz/forward"}, r.forward},
	}
}

func (r routes) mux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, m := range r.mounts() {
		if m.h == nil {
			continue
		}
		for _, p := range m.patterns {
			mux.Handle(p, m.h)
		}
	}
	return mux
}

// table lists every route the mounted parts serve, as http.ServeMux
// patterns: a part's own routes when it lists them, else where it is
// mounted.
func (r routes) table() []string {
	var out []string
	for _, m := range r.mounts() {
		switch h := m.h.(type) {
		case nil:
		case routemux.Lister:
			out = append(out, h.Patterns()...)
		default:
			out = append(out, m.patterns...)
		}
	}
	return out
}
