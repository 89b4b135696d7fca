package backend

import (
	"testing"

	"github.com/provisionhq/provision/internal/postgres/pgtest"
)

// eachEngine runs f as a subtest on the options of a fresh store of each
// engine: SQLite in a temporary directory, PostgreSQL in a schema of its
// own.
func eachEngine(t *testing.T, f func(t *testing.T, opts Options)) {
	engines := []struct {
		name string
		opts func(t *testing.T) Options
	}{
		{"sqlite", func(t *testing.T) Options { return Options{Store: t.TempDir(), Create: true} }},
		{"postgres", func(t *testing.T) Options {
			pc := pgtest.Config(t)
			return Options{Store: pc.URL, Schema: pc.Schema, MaxConns: 2}
		}},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { f(t, e.opts(t)) })
	}
}
