package batchcodec

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/s2"
)

// EventView is one entry of a payload as Each reads it: its offset, id,
// type and time, and its fields left in their stored form until a reader
// asks for one. A reader that needs a few fields of every event (the
// rollups) gets them without a map, or a value, per event.
//
// An EventView and everything it holds except the strings it returns are
// only valid during the call that is given it.
type EventView struct {
	Offset    int64
	ID        []byte
	Type      string
	Time      time.Time // zero when the event has none
	ClockSkew time.Duration

	strings *[internSlots]string // the payload's interned strings (reader.strings)
	fields  []rawField           // format 2: each field's key and tagged value
	json    map[string]any       // format 1: the decoded fields
	jsonOK  bool                 // json holds this entry's fields
}

// rawField is one field of a format 2 entry: its key as written and its
// tagged value.
type rawField struct {
	key   []byte
	value []byte
	fixed string // the key with its invalid bytes replaced, when it has any
}

// Each calls visit with each entry of a payload written by Encode, in
// order, until visit returns an error, which Each returns. It checks the
// payload as Decode does: a payload Each reads without error, Decode
// reads too, and the other way round.
func Each(payload []byte, visit func(*EventView) error) error {
	return each(payload, func(_, _ int, v *EventView) error { return visit(v) })
}

// each is Each with the entry count and the entry's index.
func each(payload []byte, visit func(n, i int, v *EventView) error) error {
	if len(payload) == 0 || payload[0] != format && payload[0] != formatJSONFields {
		return fmt.Errorf("%w: unknown format", ErrCorrupt)
	}
	binaryFields := payload[0] == format
	// Every string a view returns is copied out of raw, so its buffer is
	// reused.
	bp := getRaw()
	raw := (*bp)[:0]
	defer func() { putRaw(bp, raw) }()
	var err error
	if binaryFields {
		n, err := s2.DecodedLen(payload[1:])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if n > maxDecoded {
			return fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, maxDecoded)
		}
		raw = slices.Grow(raw, n)
		raw, err = s2.Decode(raw[:cap(raw)], payload[1:])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	} else {
		raw, err = zstdDecoder().DecodeAll(payload[1:], raw)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if len(raw) > maxDecoded {
			return fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, maxDecoded)
		}
	}
	// The reader is a local, not shared with the views: it moves on at
	// every varint, and on the heap each move cost a write barrier
	// whenever the collector ran.
	r := reader{b: raw, strings: new([internSlots]string)}
	n := r.uvarint()
	// Every entry takes at least five bytes, so a count above that is a lie.
	if r.err != nil || n > maxEntries || n > uint64(len(raw))/5 {
		return fmt.Errorf("%w: bad entry count", ErrCorrupt)
	}
	v := EventView{strings: r.strings}
	for i := range int(n) {
		off := r.uvarint()
		if off > 1<<62 {
			return fmt.Errorf("%w: entry %d: bad offset", ErrCorrupt, i)
		}
		v.Offset = int64(off)
		flags := r.byte()
		if flags&flagClockSkew != 0 && !binaryFields {
			return fmt.Errorf("%w: entry %d: clock skew in a format %d payload", ErrCorrupt, i, payload[0])
		}
		v.ID = r.bytes()
		v.Type = r.intern(r.bytes())
		v.Time, v.ClockSkew = time.Time{}, 0
		if flags&flagZeroTime == 0 {
			v.Time = time.Unix(0, r.varint()).UTC()
		}
		if flags&flagClockSkew != 0 {
			v.ClockSkew = time.Duration(r.varint())
		}
		v.fields, v.json, v.jsonOK = v.fields[:0], nil, false
		if binaryFields {
			err = r.fieldSpans(&v.fields)
		} else if fields := r.bytes(); r.err == nil {
			v.json, err = DecodeFields(fields)
			v.jsonOK = true
		}
		if r.err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, r.err)
		}
		if err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, err)
		}
		if err := visit(int(n), i, &v); err != nil {
			var fe fieldError
			if errors.As(err, &fe) {
				return fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, fe.err)
			}
			return err
		}
	}
	if r.err == nil && r.left() != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, r.left())
	}
	return nil
}

// fieldError is a stored field that could not be read: the payload is
// corrupt.
type fieldError struct{ err error }

func (e fieldError) Error() string { return e.err.Error() }
func (e fieldError) Unwrap() error { return e.err }

// Fields returns the entry's fields as Decode gives them.
func (v *EventView) Fields() (map[string]any, error) {
	if v.jsonOK {
		return v.json, nil
	}
	m := make(map[string]any, len(v.fields))
	for _, f := range v.fields {
		x, err := v.value(f.value)
		if err != nil {
			return nil, fieldError{err}
		}
		// Keys that differ only in invalid bytes become one, the last
		// value winning, as in the JSON that format 1 kept.
		m[v.validString(f.key)] = x
	}
	return m, nil
}

// find returns the stored value of the last field named key, which is
// what the map of Fields holds under key.
func (v *EventView) find(key string) ([]byte, bool) {
	for i := len(v.fields) - 1; i >= 0; i-- {
		f := &v.fields[i]
		if f.fixed == "" && string(f.key) == key || f.fixed != "" && f.fixed == key {
			return f.value, true
		}
	}
	return nil, false
}

// Value returns the field key as Fields would hold it, nil when the event
// has none.
func (v *EventView) Value(key string) any {
	if v.jsonOK {
		return v.json[key]
	}
	b, ok := v.find(key)
	if !ok {
		return nil
	}
	x, _ := v.value(b) // every value was checked when the entry was read
	return x
}

// Str returns the field key when it is a string, "" otherwise: what
// Fields()[key].(string) gives, without building the map. Short strings
// are shared across the events of the payload.
func (v *EventView) Str(key string) string {
	if v.jsonOK {
		s, _ := v.json[key].(string)
		return s
	}
	b, ok := v.find(key)
	if !ok || len(b) == 0 {
		return ""
	}
	if b[0] == tagString {
		r := reader{b: b[1:]}
		return v.validString(r.bytes())
	}
	if b[0] == tagJSON {
		s, _ := v.Value(key).(string)
		return s
	}
	return ""
}

// validString is reader.validString with the payload's interned strings.
func (v *EventView) validString(b []byte) string {
	r := reader{strings: v.strings}
	return r.validString(b)
}

// Integer returns the field key as manifest.Integer reads the value
// Fields would hold: a whole number that fits in an int64. Every number is
// a json.Number there, so it is parsed from its stored digits, without
// building the value.
func (v *EventView) Integer(key string) (int64, bool) {
	var digits string
	switch {
	case v.jsonOK:
		n, ok := v.json[key].(json.Number)
		if !ok {
			return 0, false
		}
		digits = string(n)
	default:
		b, ok := v.find(key)
		if !ok || len(b) == 0 {
			return 0, false
		}
		switch b[0] {
		case tagNumber:
			r := reader{b: b[1:]}
			digits = string(r.bytes())
		case tagJSON:
			n, ok := v.Value(key).(json.Number)
			if !ok {
				return 0, false
			}
			digits = string(n)
		default:
			return 0, false
		}
	}
	i, err := strconv.ParseInt(digits, 10, 64)
	return i, err == nil
}

// value reads one stored value.
func (v *EventView) value(b []byte) (any, error) {
	r := reader{b: b, strings: v.strings}
	x, err := r.value(0)
	if err == nil {
		err = r.err
	}
	return x, err
}

// fieldSpans reads fields written by appendFieldsBinary into spans,
// checking each value as EventView.Fields reads it, without building it.
func (r *reader) fieldSpans(out *[]rawField) error {
	n := r.uvarint()
	// A field takes at least two bytes.
	if r.err != nil || n > uint64(r.left())/2 {
		return errShort
	}
	for range n {
		k := r.bytes()
		start := r.off
		if err := r.skip(0); err != nil {
			return err
		}
		if r.err != nil {
			return r.err
		}
		f := rawField{key: k, value: r.b[start:r.off]}
		if !utf8.Valid(k) {
			f.fixed = r.validString(k)
		}
		*out = append(*out, f)
	}
	return nil
}
