package rolluptest

import (
	"testing"

	provision "github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
	"github.com/provisionhq/provision/internal/rollup"
)

// recordsOnly hides a log's ReadEvents, so the updater reads records.
type recordsOnly struct{ provision.Log }

// ReadInPlace checks that the rollups a store's log gives when the updater
// reads its stored events in place (batchcodec.EventReader) are those built
// from the records of the same log, also when a read stops inside a batch.
// log must be empty; ReadInPlace fills it with a fleet.
func ReadInPlace(t *testing.T, log provision.Log) {
	t.Helper()
	if _, ok := log.(batchcodec.EventReader); !ok {
		t.Fatalf("%T does not read its stored events in place", log)
	}
	f, err := NewFleet(FleetConfig{Installations: 100, Days: 21, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Fill(t.Context(), log); err != nil {
		t.Fatal(err)
	}
	build := func(log provision.Log, batch int) string {
		store := rollup.NewMemoryStore([]byte("k"))
		st, err := (&rollup.Updater{Log: log, Store: store, Batch: batch}).Update(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Records == 0 {
			t.Fatal("no records folded")
		}
		return Snapshot(t, store)
	}
	want := build(recordsOnly{log}, 0)
	for _, batch := range []int{0, 333} {
		if got := build(log, batch); got != want {
			t.Errorf("batch %d: rollups read in place differ from those of records:\n%s\nwant:\n%s", batch, got, want)
		}
	}
}
