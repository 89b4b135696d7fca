package batchcodec

import (
	"context"
	"errors"
	"fmt"

	"github.com/provisionhq/provision"
)

// Stored is one stored batch, decoded: the position of its last entry, its
// header and its entries. Each store reads it from its own row layout.
type Stored struct {
	End     int64
	Head    Header
	Entries []Entry
}

// SetPayload decodes the stored payload into the batch's entries.
func (b *Stored) SetPayload(payload []byte) error {
	entries, err := Decode(payload)
	if err != nil {
		return fmt.Errorf("batch ending at %d: %w", b.End, err)
	}
	b.Entries = entries
	return nil
}

// AppendRecords appends the batch's records with Seq > after to out, until
// out has limit records.
func (b *Stored) AppendRecords(out []provision.Record, after int64, limit int) []provision.Record {
	for i := range b.Entries {
		if len(out) >= limit {
			break
		}
		if b.Head.First+b.Entries[i].Offset > after {
			out = append(out, b.Head.Record(&b.Entries[i]))
		}
	}
	return out
}

// Rows is what ReadRecords and ScanAll need of a driver's result set; the
// caller closes it.
type Rows interface {
	Next() bool
	Err() error
}

// ReadRecords expands the batches of rows, in their order, into up to limit
// records with Seq > after. scan reads the current row. Batches are decoded
// only as far as the limit needs.
func ReadRecords(rows Rows, scan func() (*Stored, error), after int64, limit int) ([]provision.Record, error) {
	var out []provision.Record
	for len(out) < limit && rows.Next() {
		b, err := scan()
		if err != nil {
			return nil, err
		}
		out = b.AppendRecords(out, after, limit)
	}
	return out, rows.Err()
}

// ScanAll returns every batch of rows; scan reads the current row.
func ScanAll(rows Rows, scan func() (*Stored, error)) ([]*Stored, error) {
	var out []*Stored
	for rows.Next() {
		b, err := scan()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// RewritePage is how many batches Rewrite asks for at a time.
const RewritePage = 64

// Rewrite visits, in log order, the batches page returns (up to RewritePage
// of those after a position, in order), lets visit change their entries and
// passes those it changed to write. visit returns whether it changed the
// batch and whether to go on. A store runs it in one transaction, with
// write storing the batch again or deleting it when no entry is left.
func Rewrite(page func(after int64) ([]*Stored, error), write func(*Stored) error, visit func(*Stored) (changed, more bool)) error {
	var after int64
	for {
		batches, err := page(after)
		if err != nil {
			return err
		}
		for _, b := range batches {
			after = b.End
			changed, more := visit(b)
			if changed {
				if err := write(b); err != nil {
					return err
				}
			}
			if !more {
				return nil
			}
		}
		if len(batches) < RewritePage {
			return nil
		}
	}
}

// Rewritten is the stored form of a batch whose entries changed: its
// payload and summary. Only a batch with entries left has one.
func (b *Stored) Rewritten() ([]byte, Summary, error) {
	payload, err := Encode(b.Entries)
	if err != nil {
		return nil, Summary{}, err
	}
	return payload, Summarize(b.Entries), nil
}

// EventReader is a log that hands its readers the stored events
// themselves (EventView) rather than records with a map of fields each.
// The embedded and the PostgreSQL stores are; a reader that wants only a
// few fields of every event (the rollups) checks for it.
type EventReader interface {
	// ReadEvents visits up to limit events with Seq > after, in Seq
	// order, with the header of their batch, and returns how many it
	// visited. An error of visit stops the read and is returned.
	ReadEvents(ctx context.Context, after int64, limit int, visit func(h *Header, seq int64, v *EventView) error) (int, error)
}

// errEnough stops the visit of a batch once the limit is reached.
var errEnough = errors.New("batchcodec: limit reached")

// ReadEvents visits the events of rows' batches, in their order, up to
// limit events with Seq > after, as EventReader.ReadEvents. scan reads the
// current row: the batch without its entries, and its payload. Batches
// are read only as far as the limit needs.
func ReadEvents(rows Rows, scan func() (*Stored, []byte, error), after int64, limit int, visit func(h *Header, seq int64, v *EventView) error) (int, error) {
	n := 0
	for n < limit && rows.Next() {
		b, payload, err := scan()
		if err != nil {
			return n, err
		}
		err = Each(payload, func(v *EventView) error {
			seq := b.Head.First + v.Offset
			if seq <= after {
				return nil
			}
			if n >= limit {
				return errEnough
			}
			n++
			return visit(&b.Head, seq, v)
		})
		if err == errEnough {
			break
		}
		if errors.Is(err, ErrCorrupt) {
			return n, fmt.Errorf("batch ending at %d: %w", b.End, err)
		}
		if err != nil {
			return n, err
		}
	}
	return n, rows.Err()
}
