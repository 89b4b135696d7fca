package batchcodec

import (
	"testing"
	"time"

	"github.com/provisionhq/provision"
)

func TestPurgeVisit(t *testing.T) {
	old := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	young := old.AddDate(0, 0, 10)
	batch := func() *Stored {
		return &Stored{Entries: []Entry{
			{Offset: 0, Event: provision.Event{Type: "a", Time: old}},
			{Offset: 1, Event: provision.Event{Type: "b", Time: old}},
			{Offset: 2, Event: provision.Event{Type: "a", Time: young}},
			{Offset: 3, Event: provision.Event{Type: "a", Time: old}},
		}}
	}
	p := NewPurge("a", Day(young), 3)
	b := batch()
	changed, more := p.Visit(b)
	if !changed || !more || p.Removed != 2 {
		t.Fatalf("first batch: changed %v more %v removed %d, want true true 2", changed, more, p.Removed)
	}
	if len(b.Entries) != 2 || b.Entries[0].Offset != 1 || b.Entries[1].Offset != 2 {
		t.Fatalf("kept %+v, want offsets 1 and 2", b.Entries)
	}
	// The limit is reached within the second batch: the pass stops.
	if changed, more = p.Visit(batch()); !changed || more || p.Removed != 4 {
		t.Fatalf("second batch: changed %v more %v removed %d, want true false 4", changed, more, p.Removed)
	}
	// Nothing to remove: unchanged, and the pass goes on.
	q := NewPurge("c", Day(young), 3)
	if changed, more = q.Visit(batch()); changed || !more || q.Removed != 0 {
		t.Fatalf("no match: changed %v more %v removed %d, want false true 0", changed, more, q.Removed)
	}
}
