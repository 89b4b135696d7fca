// Package batchcodec is the stored form of one accepted batch: its events,
// encoded together and compressed, so that a batch is appended as one
// record instead of one row (and four index entries) per event. The
// embedded and the PostgreSQL store keep the same bytes.
//
// A stored batch covers a range of log positions [first, end]; each entry
// keeps its offset from first, so when retention or erasure removes some
// events from a batch the others keep their positions: a position is never
// reused and consumers' checkpoints stay meaningful.
package batchcodec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/provisionhq/provision"
)

// Entry is one event of a stored batch.
type Entry struct {
	// Offset is the event's position minus the batch's first position.
	Offset int64
	Event  provision.Event
}

// The first byte of every payload names its layout. Format 1 kept each
// event's fields as a JSON object; format 2, written since, keeps them in
// the binary layout of values.go and may carry the clock skew of corrected
// events (flagClockSkew). Both are read.
const (
	formatJSONFields = 1
	format           = 2
)

// Limits on what Decode accepts, whatever the payload says. Ingest admits
// at most a few thousand events of bounded size in one batch; these bounds
// are far above that and only stop a damaged payload from exhausting
// memory.
const (
	maxDecoded = 256 << 20
	maxEntries = 1 << 20
)

// Entry flags.
const (
	flagZeroTime  = 1 // an event without a time (none is written for it)
	flagClockSkew = 2 // a clock skew (varint nanoseconds) follows the time
)

var (
	// Format 1 payloads are zstd frames; only read now.
	zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxDecoded), zstd.WithDecoderConcurrency(0))
		if err != nil {
			panic(err)
		}
		return d
	})
	rawPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
)

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 1 << 20

func getRaw() *[]byte { return rawPool.Get().(*[]byte) }

func putRaw(bp *[]byte, b []byte) {
	if cap(b) <= maxPooled {
		*bp = b[:0]
		rawPool.Put(bp)
	}
}

// Encode returns the stored form of the entries.
func Encode(entries []Entry) ([]byte, error) {
	return encode(len(entries), func(i int) (int64, *provision.Event) {
		return entries[i].Offset, &entries[i].Event
	})
}

// encode returns the stored form of n entries, entry giving the offset and
// event of each: EncodeEvents encodes a new batch's events without a copy
// of each into an Entry.
func encode(n int, entry func(i int) (int64, *provision.Event)) ([]byte, error) {
	enc := encoders.Get().(*encoder)
	defer enc.release()
	raw := binary.AppendUvarint(enc.raw[:0], uint64(n))
	for i := range n {
		off, ev := entry(i)
		if off < 0 {
			return nil, fmt.Errorf("batchcodec: entry %d: negative offset", i)
		}
		var flags byte
		if ev.Time.IsZero() {
			flags |= flagZeroTime
		}
		if ev.ClockSkew != 0 {
			flags |= flagClockSkew
		}
		raw = binary.AppendUvarint(raw, uint64(off))
		raw = append(raw, flags)
		raw = appendLenString(raw, ev.ID)
		raw = appendLenString(raw, ev.Type)
		if flags&flagZeroTime == 0 {
			raw = binary.AppendVarint(raw, ev.Time.UnixNano())
		}
		if flags&flagClockSkew != 0 {
			raw = binary.AppendVarint(raw, int64(ev.ClockSkew))
		}
		b, err := enc.appendFields(raw, ev.Type, ev.Fields)
		if err != nil {
			enc.raw = raw // kept for the next batch
			return nil, fmt.Errorf("batchcodec: entry %d fields: %w", i, err)
		}
		raw = b
	}
	enc.raw = raw
	// S2 rather than zstd: on bench batches it compresses 2.5 times as
	// fast for 1.4 times the bytes (go test -bench Encode
	// ./internal/batchcodec), and ingest is bound by CPU, not by disk.
	enc.compressed = s2.Encode(enc.compressed[:cap(enc.compressed)], raw)
	out := make([]byte, 1+len(enc.compressed))
	out[0] = format
	copy(out[1:], enc.compressed)
	return out, nil
}

func appendLenString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// ErrCorrupt means a payload is not one Encode wrote.
var ErrCorrupt = errors.New("batchcodec: corrupt payload")

// Decode returns the entries of a payload written by Encode.
func Decode(payload []byte) ([]Entry, error) {
	var out []Entry
	err := each(payload, func(n, i int, v *EventView) error {
		if out == nil {
			out = make([]Entry, n)
		}
		e := &out[i]
		e.Offset = v.Offset
		e.Event.ID = string(v.ID)
		e.Event.Type = v.Type
		e.Event.Time = v.Time
		e.Event.ClockSkew = v.ClockSkew
		var err error
		e.Event.Fields, err = v.Fields()
		return err
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []Entry{}
	}
	return out, nil
}

// decodeJSONValue reads one JSON value as DecodeFields reads the values of
// an object.
func decodeJSONValue(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("fields: %w", err)
	}
	if d.More() {
		return nil, errors.New("fields: trailing data")
	}
	return v, nil
}

// DecodeFields reads a JSON object of fields, as format 1 and the
// per-event rows of older stores keep them. Numbers stay
// json.Number, as ingest decoded them, so a record read back validates
// exactly like the event that was accepted.
func DecodeFields(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("fields: %w", err)
	}
	if d.More() {
		return nil, errors.New("fields: trailing data")
	}
	return m, nil
}

type reader struct {
	// b is read from off on. Reading moves an integer, not a slice: a
	// slice holds a pointer, and each move of it cost a write barrier
	// while the collector ran, which it does often under the rollups.
	b   []byte
	off int
	err error
	// strings holds short strings read so far, by a cheap hash of their
	// bytes: the events of a batch repeat their types, keys and many
	// values, and a reader that keeps a batch need not keep a copy of
	// each. A collision only costs a copy.
	strings *[internSlots]string
}

// Only strings up to internMax bytes are interned, in internSlots slots.
const (
	internMax   = 64
	internSlots = 256
)

func (r *reader) intern(b []byte) string {
	n := len(b)
	if n == 0 || n > internMax {
		return string(b)
	}
	if r.strings == nil {
		r.strings = new([internSlots]string)
	}
	slot := &r.strings[(n*31+int(b[0])*7+int(b[n/2])*3+int(b[n-1]))%internSlots]
	if *slot == string(b) {
		return *slot
	}
	*slot = string(b)
	return *slot
}

var errShort = errors.New("truncated")

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.off += n
	return v
}

// varint reads what binary.PutVarint wrote: a zig-zag encoded uvarint.
func (r *reader) varint() int64 {
	ux := r.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.err = errShort
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(r.left()) {
		r.err = errShort
		return nil
	}
	v := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return v
}

// left is the number of bytes not read yet.
func (r *reader) left() int { return len(r.b) - r.off }
