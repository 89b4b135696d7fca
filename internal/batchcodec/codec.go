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
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/provisionhq/provision"
)

// Entry is one event of a stored batch.
type Entry struct {
	// Offset is the event's position minus the batch's first position.
	Offset int64
	Event  provision.Event
}

// format is the first byte of every payload; a new layout takes a new one.
// Format 2 adds the clock skew of corrected events (flagClockSkew); a
// batch with none is still written as format 1, so logs of batches that
// needed no correction stay readable by earlier versions.
const (
	format          = 1
	formatClockSkew = 2
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
	encoder = sync.OnceValue(func() *zstd.Encoder {
		// EncodeAll is safe for concurrent use; one encoder state per
		// core is kept, so appends compress in parallel.
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err)
		}
		return e
	})
	decoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxDecoded), zstd.WithDecoderConcurrency(0))
		if err != nil {
			panic(err)
		}
		return d
	})
	rawPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
)

// Encode returns the stored form of the entries.
func Encode(entries []Entry) ([]byte, error) {
	bp := rawPool.Get().(*[]byte)
	raw := (*bp)[:0]
	defer func() { *bp = raw[:0]; rawPool.Put(bp) }()
	raw = binary.AppendUvarint(raw, uint64(len(entries)))
	f := byte(format)
	for i := range entries {
		e := &entries[i]
		if e.Offset < 0 {
			return nil, fmt.Errorf("batchcodec: entry %d: negative offset", i)
		}
		var flags byte
		if e.Event.Time.IsZero() {
			flags |= flagZeroTime
		}
		if e.Event.ClockSkew != 0 {
			flags |= flagClockSkew
			f = formatClockSkew
		}
		raw = binary.AppendUvarint(raw, uint64(e.Offset))
		raw = append(raw, flags)
		raw = appendLenString(raw, e.Event.ID)
		raw = appendLenString(raw, e.Event.Type)
		if flags&flagZeroTime == 0 {
			raw = binary.AppendVarint(raw, e.Event.Time.UnixNano())
		}
		if flags&flagClockSkew != 0 {
			raw = binary.AppendVarint(raw, int64(e.Event.ClockSkew))
		}
		var err error
		start := len(raw)
		// Reserve room for the length; fields are rarely over 16 KiB.
		raw = append(raw, 0, 0, 0)
		if raw, err = appendFields(raw, e.Event.Fields); err != nil {
			return nil, fmt.Errorf("batchcodec: entry %d fields: %w", i, err)
		}
		raw = fixLength(raw, start)
	}
	out := make([]byte, 1, len(raw)/3+16)
	out[0] = f
	return encoder().EncodeAll(raw, out), nil
}

func appendLenString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFields(b []byte, fields map[string]any) ([]byte, error) {
	enc, err := EncodeFields(fields)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

// fixLength turns the three bytes reserved at start into the uvarint
// length of what follows them, moving the content when the length needs
// another size.
func fixLength(b []byte, start int) []byte {
	n := len(b) - start - 3
	var lb [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(lb[:], uint64(n))
	if l != 3 {
		content := append([]byte(nil), b[start+3:]...)
		b = append(b[:start], lb[:l]...)
		return append(b, content...)
	}
	copy(b[start:], lb[:3])
	return b
}

// ErrCorrupt means a payload is not one Encode wrote.
var ErrCorrupt = errors.New("batchcodec: corrupt payload")

// Decode returns the entries of a payload written by Encode.
func Decode(payload []byte) ([]Entry, error) {
	if len(payload) == 0 || payload[0] != format && payload[0] != formatClockSkew {
		return nil, fmt.Errorf("%w: unknown format", ErrCorrupt)
	}
	raw, err := decoder().DecodeAll(payload[1:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if len(raw) > maxDecoded {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, maxDecoded)
	}
	r := reader{b: raw}
	n := r.uvarint()
	// Every entry takes at least five bytes, so a count above that is a lie.
	if r.err != nil || n > maxEntries || n > uint64(len(raw))/5 {
		return nil, fmt.Errorf("%w: bad entry count", ErrCorrupt)
	}
	out := make([]Entry, n)
	for i := range out {
		e := &out[i]
		off := r.uvarint()
		if off > 1<<62 {
			return nil, fmt.Errorf("%w: entry %d: bad offset", ErrCorrupt, i)
		}
		e.Offset = int64(off)
		flags := r.byte()
		if flags&flagClockSkew != 0 && payload[0] != formatClockSkew {
			return nil, fmt.Errorf("%w: entry %d: clock skew in a format %d payload", ErrCorrupt, i, payload[0])
		}
		e.Event.ID = string(r.bytes())
		e.Event.Type = string(r.bytes())
		if flags&flagZeroTime == 0 {
			e.Event.Time = time.Unix(0, r.varint()).UTC()
		}
		if flags&flagClockSkew != 0 {
			e.Event.ClockSkew = time.Duration(r.varint())
		}
		fields := r.bytes()
		if r.err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, r.err)
		}
		if e.Event.Fields, err = DecodeFields(fields); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, err)
		}
	}
	if r.err == nil && len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(r.b))
	}
	return out, nil
}

// DecodeFields reads fields written by EncodeFields. Numbers stay
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
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
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
	if r.err != nil || len(r.b) == 0 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
