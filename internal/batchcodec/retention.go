package batchcodec

// Purge is one pass of a retention rule that removes the events of a type
// whose UTC day is before Cutoff, batch after batch, until Limit events
// went.
type Purge struct {
	Type    string
	Cutoff  int64 // a Day
	Limit   int64
	Removed int64
}

// NewPurge returns a pass.
func NewPurge(eventType string, cutoff int64, limit int) *Purge {
	return &Purge{Type: eventType, Cutoff: cutoff, Limit: int64(limit)}
}

// Visit removes the events from the batch's entries, reusing their
// storage. It returns whether it removed any and whether the pass may go
// on to the next batch.
func (p *Purge) Visit(b *Stored) (changed, more bool) {
	kept := b.Entries[:0]
	for _, e := range b.Entries {
		if e.Event.Type == p.Type && Day(e.Event.Time) < p.Cutoff {
			continue
		}
		kept = append(kept, e)
	}
	n := len(b.Entries) - len(kept)
	b.Entries = kept
	p.Removed += int64(n)
	return n > 0, p.Removed < p.Limit
}

// Strip is one pass of a retention rule that removes items from the events
// of a type whose UTC day is in [Lo, Hi), visiting events with a position
// above After in position order. Items may name the server-derived
// location: it is in the fields of the events that carry it, and goes
// with them.
type Strip struct {
	Type   string
	Items  []string
	Lo, Hi int64 // Days
	After  int64
	Limit  int

	Last    int64 // highest position visited
	Visited int
}

// NewStrip returns a pass.
func NewStrip(eventType string, items []string, lo, hi, after int64, limit int) *Strip {
	return &Strip{Type: eventType, Items: items, Lo: lo, Hi: hi, After: after, Limit: limit, Last: after}
}

// Visit strips the batch's entries (first is its first position) in place.
// It returns whether it changed any and whether the pass may go on to the
// next batch.
func (s *Strip) Visit(first int64, entries []Entry) (changed, more bool) {
	for i := range entries {
		e := &entries[i]
		seq := first + e.Offset
		if seq <= s.After || e.Event.Type != s.Type {
			continue
		}
		if d := Day(e.Event.Time); d < s.Lo || d >= s.Hi {
			continue
		}
		for _, it := range s.Items {
			if _, ok := e.Event.Fields[it]; ok {
				delete(e.Event.Fields, it)
				changed = true
			}
		}
		s.Last, s.Visited = seq, s.Visited+1
		if s.Visited >= s.Limit {
			return changed, false
		}
	}
	return changed, true
}
