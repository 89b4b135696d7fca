package rollup

import "context"

// DaySpanner is a Store that tells the first and last day holding cells of
// a view without reading the cells. The dashboard asks it for its default
// period on every page once the last answer is a minute old; through Cells
// that read every sketch of the view (tens of megabytes for a month of a
// large fleet). The SQLite, PostgreSQL and memory stores implement it.
type DaySpanner interface {
	// DaySpan returns the first and last day (YYYY-MM-DD) of view's cells
	// up to to inclusive (empty: no bound), or two empty strings when there
	// are none.
	DaySpan(ctx context.Context, view, to string) (first, last string, err error)
}

var _ DaySpanner = (*MemoryStore)(nil)

// DaySpan implements DaySpanner.
func (m *MemoryStore) DaySpan(_ context.Context, view, to string) (first, last string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.cells {
		if k.View != view || (to != "" && k.Day > to) {
			continue
		}
		if first == "" || k.Day < first {
			first = k.Day
		}
		if k.Day > last {
			last = k.Day
		}
	}
	return first, last, nil
}
