package rollup_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
)

func TestMemoryStoreContract(t *testing.T) {
	rolluptest.StoreContract(t, func(t *testing.T) rollup.Store {
		return rollup.NewMemoryStore([]byte("0123456789abcdef0123456789abcdef"))
	})
}

func TestRebuildReproducesIncrementalUpdates(t *testing.T) {
	ctx := context.Background()
	_, log := rolluptest.SmallFleet(t)
	store := rollup.NewMemoryStore([]byte("key-key-key-key-key-key-key-key!"))
	u := &rollup.Updater{Log: log, Store: store, Batch: 333}
	st, err := u.Update(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != log.Len() || st.Skipped != 0 {
		t.Fatalf("stats %+v, log has %d records", st, log.Len())
	}
	// A second update finds nothing new: the checkpoint makes it idempotent.
	again, err := u.Update(ctx)
	if err != nil || again.Records != 0 {
		t.Fatalf("second update: %+v, %v", again, err)
	}
	incremental := rolluptest.Snapshot(t, store)

	u.Batch = 5000
	if _, err := u.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if rebuilt := rolluptest.Snapshot(t, store); rebuilt != incremental {
		t.Fatal("rebuild in other batch sizes gives other cells")
	}

	// Applies that span several reads, the last one partial.
	defer rollup.SetReadBatch(97)()
	u.Batch = 1000
	st, err = u.Rebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (log.Len() + 999) / 1000; st.Records != log.Len() || st.Applies != want {
		t.Fatalf("stats %+v, want %d records in %d applies", st, log.Len(), want)
	}
	if rebuilt := rolluptest.Snapshot(t, store); rebuilt != incremental {
		t.Fatal("applies over several reads give other cells")
	}
}

func TestDistinctCountsMatchExactCounts(t *testing.T) {
	ctx := context.Background()
	_, log := rolluptest.SmallFleet(t)
	store := rollup.NewMemoryStore([]byte("k"))
	if _, err := (&rollup.Updater{Log: log, Store: store}).Update(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := log.Read(ctx, 0, log.Len())
	exact := map[string]map[string]bool{}
	for _, r := range recs {
		d := rollup.Day(&r)
		if exact[d] == nil {
			exact[d] = map[string]bool{}
		}
		exact[d][r.InstallationID] = true
	}
	cells, err := store.Cells(ctx, rollup.Query{Views: []string{rollup.ViewActive}})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, c := range cells {
		if c.Dims != rollup.Dims("all", "all") {
			continue
		}
		seen++
		// Below a few thousand the sparse sketch is close to exact.
		if got, want := c.Distinct(), int64(len(exact[c.Day])); got != want {
			t.Errorf("%s: distinct %d, exact %d", c.Day, got, want)
		}
	}
	if seen != len(exact) {
		t.Fatalf("%d day cells, %d days", seen, len(exact))
	}
}

func TestCellEncodingRoundTrips(t *testing.T) {
	ctx := context.Background()
	_, log := rolluptest.SmallFleet(t)
	store := rollup.NewMemoryStore([]byte("k"))
	if _, err := (&rollup.Updater{Log: log, Store: store}).Update(ctx); err != nil {
		t.Fatal(err)
	}
	cells, _ := store.Cells(ctx, rollup.Query{Views: []string{rollup.ViewTask}})
	if len(cells) == 0 {
		t.Fatal("no task cells")
	}
	for _, c := range cells {
		e, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := rollup.DecodeCell(c.Key, c.Events, c.Weight, c.Failures, e)
		if err != nil {
			t.Fatal(err)
		}
		q1, ok1 := c.Quantile(0.95)
		q2, ok2 := back.Quantile(0.95)
		if back.Distinct() != c.Distinct() || q1 != q2 || ok1 != ok2 || !ok1 {
			t.Fatalf("%s: round trip changed the cell", c.Key)
		}
	}
	if _, err := rollup.DecodeCell(rollup.Key{}, 0, 0, 0, rollup.Encoded{Installs: []byte{0xff, 1, 2}}); err == nil {
		t.Fatal("garbage sketch decoded without error")
	}
}

func TestRunKeepsUpWithTheLog(t *testing.T) {
	_, log := rolluptest.SmallFleet(t)
	store := rollup.NewMemoryStore([]byte("k"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var applied atomic.Int64
	u := &rollup.Updater{Log: log, Store: store, Updated: func(_ context.Context, st rollup.Stats) { applied.Add(int64(st.Records)) }}
	go func() { done <- u.Run(ctx, 10*time.Millisecond) }()
	head, _ := log.Head(ctx)
	for {
		cp, _ := store.Checkpoint(ctx, rollup.DefaultConsumer)
		if cp == head {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if applied.Load() != head {
		t.Fatalf("Updated saw %d records, the log has %d", applied.Load(), head)
	}
	if err := (&rollup.Updater{Log: log, Store: store}).Run(context.Background(), 0); err == nil {
		t.Fatal("a zero interval was accepted")
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A cell read with its stored estimate answers it until it is merged; the
// encoded estimate is what the decoded sketch estimates, and encoding does
// not change the cell.
func TestStoredEstimateFollowsTheSketch(t *testing.T) {
	c := rollup.NewCell(rollup.Key{Day: "2026-10-01", View: rollup.ViewActive, Dims: "all=all"})
	for i := range uint64(3000) {
		c.Installs.InsertHash(i * 0x9e3779b97f4a7c15)
	}
	before, _ := c.Installs.MarshalBinary()
	e, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	after, _ := c.Installs.MarshalBinary()
	if string(before) != string(after) {
		t.Fatal("Encode changed the sketch")
	}
	back, err := rollup.DecodeCell(c.Key, 0, 0, 0, rollup.Encoded{Installs: e.Installs})
	if err != nil {
		t.Fatal(err)
	}
	if e.Distinct == nil || *e.Distinct != back.Distinct() {
		t.Fatalf("encoded estimate %v, decoded sketch estimates %d", e.Distinct, back.Distinct())
	}
	wrong := *e.Distinct + 5
	stored, err := rollup.DecodeCell(c.Key, 0, 0, 0, rollup.Encoded{Installs: e.Installs, Distinct: &wrong})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := stored.StoredDistinct(); !ok || v != wrong || stored.Distinct() != wrong {
		t.Fatalf("stored estimate not answered: %d %v, Distinct %d", v, ok, stored.Distinct())
	}
	more := rollup.NewCell(c.Key)
	more.Installs.InsertHash(1)
	if err := stored.Merge(more); err != nil {
		t.Fatal(err)
	}
	if _, ok := stored.StoredDistinct(); ok || stored.Distinct() != back.Distinct()+1 {
		t.Fatalf("after a merge Distinct = %d, want the sketch's %d", stored.Distinct(), back.Distinct()+1)
	}
	neg := int64(-1)
	if _, err := rollup.DecodeCell(c.Key, 0, 0, 0, rollup.Encoded{Installs: e.Installs, Distinct: &neg}); err == nil {
		t.Fatal("a negative estimate decoded without error")
	}
}

func TestMemoryDaySpan(t *testing.T) {
	rolluptest.DaySpanContract(t, func(t *testing.T) rolluptest.SpanStore { return rollup.NewMemoryStore([]byte("k")) })
}
