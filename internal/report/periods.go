package report

import "github.com/provisionhq/provision/internal/rollup"

// periodSpans is a series merged over the report's period, by ISO week and by
// month. Each day is merged once, into the stretch of days that share its
// week and month; weeks and months merge those stretches, and the period
// merges the months. A HyperLogLog merge keeps the maximum of each
// register (sparse sketches keep the union of their entries), so the
// grouping changes no figure, and rollup.MergeAll picks the dense or
// sparse form from the records summed, which are the same whichever way
// they are grouped. Merging each day into its week, its month and the
// period separately did three times the register work.
type periodSpans struct {
	period        *rollup.Cell
	weeks, months []span
}

// span is one week or month of a series.
type span struct {
	name string
	cell *rollup.Cell
}

func (o Options) periodsOf(sr *series) periodSpans {
	type stretch struct {
		week, month string
		days        []*rollup.Cell
	}
	var stretches []*stretch
	for _, d := range days(o.From, o.To) {
		w, m := week(d), month(d)
		if n := len(stretches); n == 0 || stretches[n-1].week != w || stretches[n-1].month != m {
			stretches = append(stretches, &stretch{week: w, month: m})
		}
		if c := sr.byDay[d]; c != nil {
			s := stretches[len(stretches)-1]
			s.days = append(s.days, c)
		}
	}
	k := rollup.Key{View: sr.view, Dims: sr.dims}
	merged := make([]*rollup.Cell, len(stretches))
	for i, s := range stretches {
		merged[i] = mergeAll(k, s.days)
	}
	group := func(name func(*stretch) string) []span {
		var out []span
		var parts []*rollup.Cell
		for i, s := range stretches {
			parts = append(parts, merged[i])
			if i+1 == len(stretches) || name(stretches[i+1]) != name(s) {
				out = append(out, span{name: name(s), cell: mergeAll(k, parts)})
				parts = nil
			}
		}
		return out
	}
	var sp periodSpans
	sp.weeks = group(func(s *stretch) string { return s.week })
	sp.months = group(func(s *stretch) string { return s.month })
	months := make([]*rollup.Cell, len(sp.months))
	for i, m := range sp.months {
		months[i] = m.cell
	}
	// Before any month is estimated: an estimate compacts a sparse sketch.
	sp.period = mergeAll(k, months)
	return sp
}

// points are the published figures of spans, one per span.
func (o Options) points(ss []span) []Point {
	pts := make([]Point, 0, len(ss))
	for _, s := range ss {
		pts = append(pts, o.point(s.name, s.cell.Distinct()))
	}
	return pts
}
