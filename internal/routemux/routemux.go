// Package routemux is an http.ServeMux that remembers the patterns it was
// given, so that a server's route table can be listed from the code that
// mounts it and compared with its API description (api/openapi.yaml).
package routemux

import (
	"net/http"
	"slices"
)

// Mux is an http.ServeMux that records its patterns.
type Mux struct {
	*http.ServeMux
	patterns []string
}

// New returns an empty Mux.
func New() *Mux { return &Mux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern, as http.ServeMux.Handle does.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.patterns = append(m.patterns, pattern)
}

// HandleFunc registers f for pattern, as http.ServeMux.HandleFunc does.
func (m *Mux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// Patterns returns the patterns registered, in order.
func (m *Mux) Patterns() []string { return slices.Clone(m.patterns) }

// Lister is a handler that lists the patterns it serves.
type Lister interface {
	Patterns() []string
}
