package sqlite

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/provisionhq/provision/internal/report"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
)

// openRollupStore opens a fresh store through Open, so that the rollup
// tables come from the migration runner like in production.
func openRollupStore(t testing.TB) *RollupStore {
	t.Helper()
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "provision.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return NewRollupStore(st.DB())
}

func TestRollupStoreContract(t *testing.T) {
	rolluptest.StoreContract(t, func(t *testing.T) rollup.Store { return openRollupStore(t) })
}

// BenchmarkRollupUpdate measures folding the log into SQLite rollups.
func BenchmarkRollupUpdate(b *testing.B) {
	_, log := rolluptest.SmallFleet(b)
	records := 0
	for b.Loop() {
		b.StopTimer()
		store := openRollupStore(b)
		b.StartTimer()
		st, err := (&rollup.Updater{Log: log, Store: store}).Update(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		records += st.Records
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRollupReports builds both reports from SQLite rollups of
// 100,000 installations over 30 days: reading and decoding the cells is
// part of what a report costs on the embedded store.
func BenchmarkRollupReports(b *testing.B) {
	ctx := context.Background()
	scale := rolluptest.NewScale(b, 100_000, 30)
	store := openRollupStore(b)
	cells, err := scale.Store.Cells(ctx, rollup.Query{})
	if err != nil {
		b.Fatal(err)
	}
	var certs []rollup.Cert
	for _, v := range []string{rollup.ViewTLSIssuer, rollup.ViewFileSigner} {
		cs, _ := scale.Store.Certs(ctx, v)
		certs = append(certs, cs...)
	}
	if err := store.Apply(ctx, "scale", 0, 1, rollup.Delta{Cells: cells, Certs: certs}); err != nil {
		b.Fatal(err)
	}
	o := report.Options{From: scale.Start.Format("2006-01-02"), To: scale.Start.AddDate(0, 0, scale.Days-1).Format("2006-01-02")}
	for _, kind := range []string{"quality", "threats"} {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				var d report.Document
				var err error
				if kind == "quality" {
					d, err = report.BuildQuality(ctx, store, o)
				} else {
					d, err = report.BuildThreats(ctx, store, o)
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := report.Write(io.Discard, d, "json"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
