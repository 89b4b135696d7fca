package batchcodec

import (
	"slices"
	"strings"
	"time"

	"github.com/provisionhq/provision"
)

// Header is what a store keeps beside a batch's payload, once per batch.
type Header struct {
	First          int64 // position of the entry with offset 0
	BatchID        string
	InstallationID string
	Region         string
	ReceivedAt     time.Time
}

// Record expands one entry of the batch into the record readers get, as
// every log builds it (provision.NewRecord): the location is the event's
// own, in the fields of the event types the manifest declares it for. A
// batch keeps no location of its own.
func (h *Header) Record(e *Entry) provision.Record {
	sub := provision.Submission{BatchID: h.BatchID, InstallationID: h.InstallationID, Region: h.Region, ReceivedAt: h.ReceivedAt}
	return provision.NewRecord(h.First+e.Offset, &sub, e.Event)
}

// Entries are the events of a new batch at offsets 0, 1, ….
func Entries(events []provision.Event) []Entry {
	out := make([]Entry, len(events))
	for i := range events {
		out[i] = Entry{Offset: int64(i), Event: events[i]}
	}
	return out
}

// Summary is what a store indexes about a batch's events, so retention can
// pick the batches it concerns without decoding the others.
type Summary struct {
	DayMin, DayMax int64  // UTC days (since the Unix epoch) of the event times
	Types          string // event types present, sorted, each followed by a space, after a leading space
	Last           int64  // highest offset
}

// Summarize returns the summary of a non-empty list of entries.
func Summarize(entries []Entry) Summary {
	return summarize(len(entries), func(i int) (int64, *provision.Event) {
		return entries[i].Offset, &entries[i].Event
	})
}

// summarize is Summarize of n entries, entry giving each one's offset and
// event, as encode takes them.
func summarize(n int, entry func(i int) (int64, *provision.Event)) Summary {
	var s Summary
	types := make([]string, 0, 4)
	for i := range n {
		off, ev := entry(i)
		d := Day(ev.Time)
		if i == 0 || d < s.DayMin {
			s.DayMin = d
		}
		if i == 0 || d > s.DayMax {
			s.DayMax = d
		}
		s.Last = max(s.Last, off)
		if !slices.Contains(types, ev.Type) {
			types = append(types, ev.Type)
		}
	}
	slices.Sort(types)
	s.Types = " " + strings.Join(types, " ") + " "
	return s
}

// TypeToken is how a type appears in Summary.Types, for a substring match.
func TypeToken(eventType string) string { return " " + eventType + " " }

const nanosPerDay = int64(24 * time.Hour)

// Day is the UTC day of t as days since the Unix epoch.
func Day(t time.Time) int64 {
	n := t.UnixNano()
	d := n / nanosPerDay
	if n < 0 && n%nanosPerDay != 0 {
		d--
	}
	return d
}

// Encoded is a new batch's events in their stored form, with their summary:
// what a store writes. Ingest on the scale-out path encodes once and the
// bytes travel through the replicated log to the store unchanged.
type Encoded struct {
	Payload []byte
	Summary Summary
	Events  int
}

// EncodeEvents returns the stored form of a new batch's events, or nil when
// there are none.
func EncodeEvents(events []provision.Event) (*Encoded, error) {
	if len(events) == 0 {
		return nil, nil
	}
	// The events are at offsets 0, 1, …: taken in place rather than
	// copied into Entries, a copy that cost a tenth of the encoding.
	entry := func(i int) (int64, *provision.Event) { return int64(i), &events[i] }
	payload, err := encode(len(events), entry)
	if err != nil {
		return nil, err
	}
	return &Encoded{Payload: payload, Summary: summarize(len(events), entry), Events: len(events)}, nil
}
