package rolluptest

import (
	"context"
	"testing"

	"github.com/provisionhq/provision/internal/rollup"
)

// SpanStore is a rollup store that finds a view's first and last day.
type SpanStore interface {
	rollup.Store
	rollup.DaySpanner
}

// DaySpanContract checks DaySpan against the cells applied: per view, with
// and without an upper bound, and on a view or a bound with no cells.
func DaySpanContract(t *testing.T, newStore func(t *testing.T) SpanStore) {
	ctx := context.Background()
	s := newStore(t)
	span := func(view, to, wantFirst, wantLast string) {
		t.Helper()
		first, last, err := s.DaySpan(ctx, view, to)
		if err != nil || first != wantFirst || last != wantLast {
			t.Fatalf("DaySpan(%q, %q) = %q, %q, %v; want %q, %q", view, to, first, last, err, wantFirst, wantLast)
		}
	}
	span(rollup.ViewActive, "", "", "")
	var cells []*rollup.Cell
	for _, k := range []rollup.Key{
		{Day: "2026-10-03", View: rollup.ViewActive, Dims: "all=all"},
		{Day: "2026-10-09", View: rollup.ViewActive, Dims: "version=1"},
		{Day: "2026-10-05", View: rollup.ViewActive, Dims: "all=all"},
		{Day: "2026-09-30", View: rollup.ViewTask, Dims: "type=x"},
		{Day: "2026-10-20", View: rollup.ViewTask, Dims: "type=x"},
	} {
		c := rollup.NewCell(k)
		c.Events = 1
		c.Installs.InsertHash(1 << 50)
		cells = append(cells, c)
	}
	if err := s.Apply(ctx, "c", 0, 1, rollup.Delta{Cells: cells}); err != nil {
		t.Fatal(err)
	}
	span(rollup.ViewActive, "", "2026-10-03", "2026-10-09")
	span(rollup.ViewActive, "2026-10-08", "2026-10-03", "2026-10-05")
	span(rollup.ViewActive, "2026-10-05", "2026-10-03", "2026-10-05")
	span(rollup.ViewActive, "2026-10-02", "", "")
	span(rollup.ViewTask, "", "2026-09-30", "2026-10-20")
	span(rollup.ViewLicense, "", "", "")
}
