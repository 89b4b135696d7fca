package backend

import (
	"context"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/rollup"
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

// seedTwoInstallations stores one os event of each of two installations at
// day and updates the rollups: gone is the one a test erases, stays the
// one it keeps.
func seedTwoInstallations(t *testing.T, b *Backend, day time.Time) (gone, stays string) {
	t.Helper()
	ctx := context.Background()
	gone, stays = "7c1f3a52-9d0e-4b8a-a1c2-3e4f5a6b7c8d", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	for i, id := range []string{gone, stays} {
		sub := &provision.Submission{BatchID: "b" + id, InstallationID: id, Region: "eu", ReceivedAt: day,
			Response: []byte(`{}`),
			Events: []provision.Event{{ID: "e" + id, Type: "os", Time: day.Add(time.Duration(i) * time.Minute),
				Fields: map[string]any{"os.type": "linux"}}}}
		if _, _, err := b.Log.Append(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Updater(nil).Update(ctx); err != nil {
		t.Fatal(err)
	}
	return gone, stays
}

// activeDistinct is the distinct installations of the active view's
// all/all cell, 0 when there is none.
func activeDistinct(t *testing.T, b *Backend) int64 {
	t.Helper()
	cells, err := b.Rollups.Cells(context.Background(), rollup.Query{Views: []string{rollup.ViewActive}})
	if err != nil {
		t.Fatal(err)
	}
	for _, cell := range cells {
		if cell.Dims == rollup.Dims("all", "all") {
			return cell.Distinct()
		}
	}
	return 0
}
