package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
)

func TestRollupStoreContract(t *testing.T) {
	t.Parallel()
	rolluptest.StoreContract(t, func(t *testing.T) rollup.Store { return pgtest.Open(t).Rollups() })
}

func TestRollupEstimatesStored(t *testing.T) {
	t.Parallel()
	rolluptest.EstimateContract(t, func(t *testing.T) rollup.DayStore { return pgtest.Open(t).Rollups() })
}

func TestRollupDaySpan(t *testing.T) {
	t.Parallel()
	rolluptest.DaySpanContract(t, func(t *testing.T) rolluptest.SpanStore { return pgtest.Open(t).Rollups() })
}

// Several consumers (say, one per shard of the log) merge into the same
// cells at the same time; every merge counts.
func TestRollupConcurrentConsumersLoseNoUpdate(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t).Rollups()
	ctx := context.Background()
	const consumers, rounds = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, consumers)
	for c := range consumers {
		wg.Go(func() {
			name := fmt.Sprint("shard-", c)
			for r := range rounds {
				var cells []*rollup.Cell
				// Overlapping keys, created by whichever consumer comes first.
				for _, dims := range []string{"all=all", fmt.Sprint("round=", r), fmt.Sprint("shard=", c)} {
					cell := rollup.NewCell(rollup.Key{Day: "2026-11-29", View: "active", Dims: dims})
					cell.Events = 1
					cell.Installs.InsertHash(uint64(c*1000+r+1) << 40)
					cells = append(cells, cell)
				}
				if err := s.Apply(ctx, name, int64(r), int64(r+1), rollup.Delta{Cells: cells}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cells, err := s.Cells(ctx, rollup.Query{Views: []string{"active"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range cells {
		got[c.Dims] = c.Events
	}
	if got["all=all"] != consumers*rounds || got["round=0"] != consumers || got["shard=0"] != rounds {
		t.Fatalf("events per cell: all %d, round=0 %d, shard=0 %d", got["all=all"], got["round=0"], got["shard=0"])
	}
	for _, c := range cells {
		if c.Dims == "all=all" && c.Distinct() != consumers*rounds {
			t.Fatalf("distinct installations in all=all: %d", c.Distinct())
		}
	}
}
