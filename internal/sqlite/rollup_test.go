package sqlite

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/provisionhq/provision/internal/cputime"
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
			cpu0, _ := cputime.Self()
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
			// CPU per build, garbage collection included: on a shared
			// machine ns/op grows with the others' load, this much less.
			if cpu1, ok := cputime.Self(); ok {
				b.ReportMetric((cpu1-cpu0).Seconds()/float64(b.N), "cpu-s/op")
			}
		})
	}
}

func TestRollupEstimatesStored(t *testing.T) {
	rolluptest.EstimateContract(t, func(t *testing.T) rollup.DayStore { return openRollupStore(t) })
}

// A report reads the stored estimate, not the sketch; a row written before
// the estimate was stored (NULL) is estimated from its sketch.
func TestRollupEstimateRead(t *testing.T) {
	ctx := context.Background()
	s := openRollupStore(t)
	c := rollup.NewCell(rollup.Key{Day: "2026-10-01", View: rollup.ViewActive, Dims: "all=all"})
	for i := range uint64(40) {
		c.Events++
		c.Installs.InsertHash(i << 40)
	}
	if err := s.Apply(ctx, "c", 0, 1, rollup.Delta{Cells: []*rollup.Cell{c}}); err != nil {
		t.Fatal(err)
	}
	distinct := func() int64 {
		t.Helper()
		cells, err := s.Cells(ctx, rollup.Query{})
		if err != nil || len(cells) != 1 {
			t.Fatalf("cells %v, %v", cells, err)
		}
		return cells[0].Distinct()
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE rollup_cells SET installs_distinct = 1234`); err != nil {
		t.Fatal(err)
	}
	if got := distinct(); got != 1234 {
		t.Fatalf("Distinct = %d, want the stored 1234", got)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE rollup_cells SET installs_distinct = NULL`); err != nil {
		t.Fatal(err)
	}
	if got := distinct(); got != 40 {
		t.Fatalf("Distinct of a row without estimate = %d, want 40 from the sketch", got)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE rollup_cells SET installs_distinct = -1`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cells(ctx, rollup.Query{}); err == nil {
		t.Fatal("a negative stored estimate was read without error")
	}
}

func TestRollupDaySpan(t *testing.T) {
	rolluptest.DaySpanContract(t, func(t *testing.T) rolluptest.SpanStore { return openRollupStore(t) })
}
