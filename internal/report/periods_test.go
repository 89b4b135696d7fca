package report

import (
	"fmt"
	"testing"

	"github.com/provisionhq/provision/internal/rollup"
)

// periodsOf merges each day once and groups the merges; the figures must be
// those of merging each week's, month's and the period's days directly,
// whatever form the sketches take: sparse days, dense days, and sparse
// weeks in a dense period.
func TestPeriodsMatchDirectMerges(t *testing.T) {
	h := func(x uint64) uint64 { // splitmix64: uniform like a keyed hash
		x += 0x9e3779b97f4a7c15
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
		x = (x ^ (x >> 27)) * 0x94d049bb133111eb
		return x ^ (x >> 31)
	}
	sr := &series{view: rollup.ViewActive, dims: "all=all", byDay: map[string]*rollup.Cell{}}
	// 2026-09-24 .. 2026-10-20: crosses a month and five ISO weeks; some
	// days are missing, some small, some past the dense threshold.
	sizes := []int{3, 0, 40, 900, 6000, 0, 0, 12, 70000, 25000, 300, 5, 0, 80000, 18000, 2, 1, 0, 4000, 9000, 30000, 7, 100, 0, 66000, 10, 500}
	for i, n := range sizes {
		if n == 0 {
			continue
		}
		day := addDays("2026-09-24", i)
		c := rollup.NewCell(rollup.Key{Day: day, View: sr.view, Dims: sr.dims})
		for j := range n {
			c.Events++
			c.Installs.InsertHash(h(uint64(j*7 + i))) // days share most installations
		}
		sr.byDay[day] = c
	}
	direct := func(from, to string, name func(string) string) map[string]int64 {
		groups := map[string][]*rollup.Cell{}
		for _, d := range days(from, to) {
			if c := sr.byDay[d]; c != nil {
				groups[name(d)] = append(groups[name(d)], c)
			} else if _, ok := groups[name(d)]; !ok {
				groups[name(d)] = nil
			}
		}
		out := map[string]int64{}
		for g, cells := range groups {
			out[g] = mergeAll(rollup.Key{}, cells).Distinct()
		}
		return out
	}
	for _, r := range [][2]string{{"2026-09-24", "2026-10-20"}, {"2026-09-27", "2026-10-02"}, {"2026-10-01", "2026-10-20"}, {"2026-10-05", "2026-10-05"}, {"2026-09-25", "2026-10-18"}} {
		t.Run(fmt.Sprint(r[0], "..", r[1]), func(t *testing.T) {
			o := Options{From: r[0], To: r[1]}
			sp := o.periodsOf(sr)
			for _, g := range []struct {
				spans []span
				name  func(string) string
			}{{sp.weeks, week}, {sp.months, month}} {
				want := direct(r[0], r[1], g.name)
				if len(g.spans) != len(want) {
					t.Fatalf("%d spans, want %d", len(g.spans), len(want))
				}
				for _, s := range g.spans {
					if got := s.cell.Distinct(); got != want[s.name] {
						t.Errorf("%s: %d, direct merge %d", s.name, got, want[s.name])
					}
				}
			}
			want := direct(r[0], r[1], func(string) string { return "period" })["period"]
			if got := sp.period.Distinct(); got != want {
				t.Errorf("period: %d, direct merge %d", got, want)
			}
			if got := sr.merged(r[0], r[1]); got.Events != sp.period.Events || got.Distinct() != want {
				t.Errorf("period events %d, merged %d", sp.period.Events, got.Events)
			}
		})
	}
}
