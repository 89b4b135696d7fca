package sqlite

import (
	"context"
	"path/filepath"
	"testing"

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
