package rolluptest

import (
	"context"
	"testing"

	"github.com/provisionhq/provision/internal/rollup"
)

// EstimateContract checks that a store keeps each cell's distinct estimate
// with its sketch, as the SQL stores do: every cell read back carries a
// stored estimate equal to what its sketch estimates, after a first write,
// after a merge into a stored cell and after days are replaced. Cells of
// both sketch forms are covered: a sparse one of a few installations and a
// dense one of 70,000.
func EstimateContract(t *testing.T, newStore func(t *testing.T) rollup.DayStore) {
	ctx := context.Background()
	cell := func(day, dims string, from, n uint64) *rollup.Cell {
		c := rollup.NewCell(rollup.Key{Day: day, View: rollup.ViewActive, Dims: dims})
		for i := from; i < from+n; i++ {
			c.Events++
			c.Installs.InsertHash(splitmix64(i))
		}
		return c
	}
	check := func(t *testing.T, s rollup.Store, want int) {
		t.Helper()
		cells, err := s.Cells(ctx, rollup.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(cells) != want {
			t.Fatalf("%d cells, want %d", len(cells), want)
		}
		for _, c := range cells {
			stored, ok := c.StoredDistinct()
			if !ok {
				t.Fatalf("%s: no stored estimate", c.Key)
			}
			if est := int64(c.Installs.Clone().Estimate()); stored != est || c.Distinct() != est {
				t.Fatalf("%s: stored estimate %d, Distinct %d, the sketch estimates %d", c.Key, stored, c.Distinct(), est)
			}
		}
	}
	s := newStore(t)
	d1, d2 := "2026-10-01", "2026-10-02"
	if err := s.Apply(ctx, "c", 0, 1, rollup.Delta{Cells: []*rollup.Cell{
		cell(d1, "all=all", 0, 70_000), cell(d1, "edition=free", 0, 5), cell(d2, "all=all", 0, 12),
	}}); err != nil {
		t.Fatal(err)
	}
	check(t, s, 3)
	// Merged into stored cells: the estimates must follow the sketches.
	if err := s.Apply(ctx, "c", 1, 2, rollup.Delta{Cells: []*rollup.Cell{
		cell(d1, "all=all", 60_000, 20_000), cell(d1, "edition=free", 3, 4),
	}}); err != nil {
		t.Fatal(err)
	}
	check(t, s, 3)
	cells, _ := s.Cells(ctx, rollup.Query{From: d1, To: d1, Views: []string{rollup.ViewActive}})
	for _, c := range cells {
		if c.Dims == "edition=free" && c.Distinct() != 7 {
			t.Fatalf("merged sparse cell estimates %d, want 7", c.Distinct())
		}
	}
	// A refresh after an erasure replaces the day with fewer installations.
	if err := s.ReplaceDays(ctx, "c", 2, []string{d1}, rollup.Delta{Cells: []*rollup.Cell{
		cell(d1, "all=all", 1, 30_000), cell(d1, "edition=free", 1, 2),
	}}); err != nil {
		t.Fatal(err)
	}
	check(t, s, 3)
	cells, _ = s.Cells(ctx, rollup.Query{From: d1, To: d1})
	for _, c := range cells {
		if c.Dims == "edition=free" && c.Distinct() != 2 {
			t.Fatalf("replaced cell estimates %d, want 2", c.Distinct())
		}
	}
}
