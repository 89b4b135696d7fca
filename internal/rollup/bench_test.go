package rollup_test

import (
	"context"
	"math"
	"testing"

	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
)

// BenchmarkUpdate measures how fast records are folded into rollups.
func BenchmarkUpdate(b *testing.B) {
	_, log := rolluptest.SmallFleet(b)
	ctx := context.Background()
	records := 0
	for b.Loop() {
		store := rollup.NewMemoryStore([]byte("bench"))
		st, err := (&rollup.Updater{Log: log, Store: store}).Update(ctx)
		if err != nil {
			b.Fatal(err)
		}
		records += st.Records
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// TestDistinctErrorAtScale checks the sketch against exact counts for
// 100,000 installations: each day and the whole period (a merge of days).
func TestDistinctErrorAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100,000 installations over 30 days")
	}
	s := rolluptest.NewScale(t, 100_000, 30)
	cells, err := s.Store.Cells(context.Background(), rollup.Query{Views: []string{rollup.ViewActive}})
	if err != nil {
		t.Fatal(err)
	}
	period := rollup.NewCell(rollup.Key{})
	worst := 0.0
	for _, c := range cells {
		if c.Dims != rollup.Dims("all", "all") {
			continue
		}
		if err := period.MergeAs(c); err != nil {
			t.Fatal(err)
		}
		d := int(c.Installs.Estimate())
		exact := s.ExactDaily[dayIndex(s, c.Day)]
		worst = math.Max(worst, math.Abs(float64(d-exact))/float64(exact))
	}
	pe := math.Abs(float64(period.Distinct())-float64(s.ExactPeriod)) / float64(s.ExactPeriod)
	t.Logf("distinct-count error: worst day %.3f%%, period %.3f%% (exact %d, estimate %d)", 100*worst, 100*pe, s.ExactPeriod, period.Distinct())
	if worst > 0.01 || pe > 0.01 {
		t.Fatalf("distinct-count error above 1%%: worst day %.3f%%, period %.3f%%", 100*worst, 100*pe)
	}
}

func dayIndex(s *rolluptest.Scale, day string) int {
	for i := range s.Days {
		if s.Start.AddDate(0, 0, i).Format("2006-01-02") == day {
			return i
		}
	}
	return -1
}
