package report

import (
	"context"
	"fmt"
	"sort"

	"github.com/provisionhq/provision/internal/rollup"
)

// series is one view+dims over days.
type series struct {
	view, dims string
	byDay      map[string]*rollup.Cell
	distinct   map[string]int64 // estimates by day: a dense estimate reads 65,536 registers
}

// seriesSet groups cells by view and dims.
type seriesSet struct {
	order []string
	m     map[string]*series
}

func loadSeries(ctx context.Context, s rollup.Store, q rollup.Query) (*seriesSet, error) {
	cells, err := s.Cells(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("report: read rollups: %w", err)
	}
	set := &seriesSet{m: make(map[string]*series)}
	for _, c := range cells {
		k := c.View + "\x00" + c.Dims
		sr := set.m[k]
		if sr == nil {
			sr = &series{view: c.View, dims: c.Dims, byDay: make(map[string]*rollup.Cell)}
			set.m[k] = sr
			set.order = append(set.order, k)
		}
		sr.byDay[c.Day] = c
	}
	sort.Strings(set.order)
	return set, nil
}

func (s *seriesSet) view(v string) []*series {
	var out []*series
	for _, k := range s.order {
		if sr := s.m[k]; sr.view == v {
			out = append(out, sr)
		}
	}
	return out
}

func (s *seriesSet) get(view, dims string) *series { return s.m[view+"\x00"+dims] }

// merged merges the cells of days from..to.
func (sr *series) merged(from, to string) *rollup.Cell {
	ds := make([]string, 0, len(sr.byDay))
	for d := range sr.byDay {
		if d >= from && d <= to {
			ds = append(ds, d)
		}
	}
	sort.Strings(ds) // a fixed merge order keeps rebuilt reports byte-identical
	cells := make([]*rollup.Cell, len(ds))
	for i, d := range ds {
		cells[i] = sr.byDay[d]
	}
	return mergeAll(rollup.Key{View: sr.view, Dims: sr.dims}, cells)
}

func mergeAll(k rollup.Key, cells []*rollup.Cell) *rollup.Cell {
	out, err := rollup.MergeAll(k, cells)
	if err != nil {
		// Cells of one store share their sketch parameters; a mismatch is
		// corruption, and an empty cell publishes nothing.
		return rollup.NewCell(k)
	}
	return out
}

func (sr *series) firstLast() (first, last string) {
	for d := range sr.byDay {
		if first == "" || d < first {
			first = d
		}
		if d > last {
			last = d
		}
	}
	return first, last
}

func (sr *series) distinctOn(day string) int64 {
	if v, ok := sr.distinct[day]; ok {
		return v
	}
	var v int64
	if c := sr.byDay[day]; c != nil {
		v = c.Distinct()
	}
	if sr.distinct == nil {
		sr.distinct = make(map[string]int64)
	}
	sr.distinct[day] = v
	return v
}

func dimsOf(s string) map[string]string {
	v, _ := rollup.ParseDims(s)
	out := make(map[string]string, len(v))
	for k := range v {
		out[k] = v.Get(k)
	}
	return out
}

// Point is one period of a time series.
type Point struct {
	Period     string `json:"period"`
	Installs   *int64 `json:"installations"`
	Suppressed bool   `json:"suppressed,omitempty"`
}

// point is one period's figure; a period below k shows as suppressed
// whether it had no installation or a few, so the mark reveals nothing.
func (o Options) point(period string, installs int64) Point {
	p, ok := o.publish(installs)
	if !ok {
		return Point{Period: period, Suppressed: true}
	}
	return Point{Period: period, Installs: p.installations()}
}

// dailyPoints is the per-day series of sr in the report's period.
func (o Options) dailyPoints(sr *series) []Point {
	var pts []Point
	for _, d := range days(o.From, o.To) {
		pts = append(pts, o.point(d, sr.distinctOn(d)))
	}
	return pts
}

func ratio(a, b *int64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	r := float64(*a) / float64(*b)
	r = float64(int64(r*10000+0.5)) / 10000 // four places keep JSON stable and readable
	return &r
}
