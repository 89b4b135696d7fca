package batchcodec

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Fields in the binary layout (format 2): a count, then each field's key and
// tagged value, keys sorted. It reads back exactly what the JSON layout of
// format 1 did (strings with invalid UTF-8 repaired, numbers as
// json.Number, lists as []any) at a fraction of the cost of a JSON encoder
// and decoder: ingest encodes every accepted event, and the rollups and
// every other reader decode each stored event.
const (
	tagNull byte = iota
	tagFalse
	tagTrue
	tagString
	tagNumber
	tagList
	tagJSON // any other value, as JSON
)

// maxDepth bounds the nesting of lists a payload may claim, so a damaged
// one cannot exhaust the stack.
const maxDepth = 16

// appendFields appends an event's fields in the binary layout.
func (e *encoder) appendFields(b []byte, typ string, fields map[string]any) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(fields)))
	if len(fields) == 0 {
		return b, nil
	}
	for _, f := range e.sortedFields(typ, fields) {
		b = appendLenString(b, f.key)
		var err error
		if b, err = appendBinaryValue(b, f.value, 0); err != nil {
			return nil, fmt.Errorf("field %q: %w", f.key, err)
		}
	}
	return b, nil
}

type field struct {
	key   string
	value any
}

// sortedFields returns the fields sorted by key, so that a batch's bytes
// do not depend on map order (the same batch always stores the same
// bytes). The events of one type mostly carry the same keys: when an event
// has as many keys as the last one of its type and each of those, it has
// exactly those, and looking them up in their known order costs less than
// ranging over the map and sorting (a map of up to eight keys is searched
// without hashing).
func (e *encoder) sortedFields(typ string, fields map[string]any) []field {
	o := e.order(typ)
	pairs := e.pairs[:0]
	if len(o.keys) == len(fields) {
		for _, k := range o.keys {
			v, ok := fields[k]
			if !ok {
				break
			}
			pairs = append(pairs, field{k, v})
		}
		if len(pairs) == len(fields) {
			e.pairs = pairs
			return pairs
		}
		pairs = pairs[:0]
	}
	for k, v := range fields {
		pairs = append(pairs, field{k, v})
	}
	slices.SortFunc(pairs, func(a, b field) int { return strings.Compare(a.key, b.key) })
	o.keys = o.keys[:0]
	for _, f := range pairs {
		o.keys = append(o.keys, f.key)
	}
	e.pairs = pairs
	return pairs
}

func appendBinaryValue(b []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return appendLenString(append(b, tagString), x), nil
	case json.Number:
		if x == "" {
			x = "0"
		} else if !validNumber(x) {
			return nil, fmt.Errorf("invalid number %q", clip(string(x)))
		}
		return appendLenString(append(b, tagNumber), string(x)), nil
	case bool:
		if x {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case nil:
		return append(b, tagNull), nil
	case int64:
		return appendLenString(append(b, tagNumber), strconv.FormatInt(x, 10)), nil
	case int:
		return appendLenString(append(b, tagNumber), strconv.Itoa(x)), nil
	case []string:
		if x == nil {
			return append(b, tagNull), nil
		}
		b = binary.AppendUvarint(append(b, tagList), uint64(len(x)))
		for _, s := range x {
			b = appendLenString(append(b, tagString), s)
		}
		return b, nil
	case []any:
		if x == nil {
			return append(b, tagNull), nil
		}
		if depth >= maxDepth {
			break // deeper lists go as JSON
		}
		b = binary.AppendUvarint(append(b, tagList), uint64(len(x)))
		for _, e := range x {
			var err error
			if b, err = appendBinaryValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return appendLenString(append(b, tagJSON), string(out)), nil
}

// validString is b with each invalid UTF-8 byte replaced by U+FFFD, as a
// JSON encoder writes it. Strings are written as they are and repaired
// here, on reading: what ingest accepted is valid already, and reading
// checks every string anyway.
func (r *reader) validString(b []byte) string {
	if utf8.Valid(b) {
		return r.intern(b)
	}
	fixed := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		c, size := utf8.DecodeRune(b[i:])
		if c == utf8.RuneError && size == 1 {
			fixed = utf8.AppendRune(fixed, utf8.RuneError)
		} else {
			fixed = append(fixed, b[i:i+size]...)
		}
		i += size
	}
	return string(fixed)
}

// validNumber reports whether s is a JSON number.
func validNumber[T ~string | []byte](s T) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i, _ = digits(s, i)
	default:
		return false
	}
	ok := true
	if i < len(s) && s[i] == '.' {
		if i, ok = digits(s, i+1); !ok {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i, ok = digits(s, i); !ok {
			return false
		}
	}
	return i == len(s)
}

// digits returns the end of the run of decimal digits at s[i:], and
// whether the run has any.
func digits[T ~string | []byte](s T, i int) (int, bool) {
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	return j, j > i
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func (r *reader) value(depth int) (any, error) { return r.walk(depth, true) }

// skip checks one value as value reads it, without building it.
func (r *reader) skip(depth int) error {
	_, err := r.walk(depth, false)
	return err
}

// walk reads one value, and builds it when keep is set.
func (r *reader) walk(depth int, keep bool) (any, error) {
	switch tag := r.byte(); tag {
	case tagNull:
		return nil, r.err
	case tagFalse:
		return false, nil
	case tagTrue:
		return true, nil
	case tagString:
		s := r.bytes()
		if !keep {
			return nil, r.err
		}
		return r.validString(s), r.err
	case tagNumber:
		s := r.bytes()
		if !validNumber(s) {
			return nil, fmt.Errorf("fields: invalid number")
		}
		if !keep {
			return nil, r.err
		}
		return json.Number(s), r.err
	case tagList:
		n := r.uvarint()
		if r.err != nil || n > uint64(r.left()) || depth >= maxDepth {
			return nil, fmt.Errorf("fields: bad list")
		}
		var l []any
		if keep {
			l = make([]any, n)
		}
		for i := range n {
			v, err := r.walk(depth+1, keep)
			if err != nil {
				return nil, err
			}
			if keep {
				l[i] = v
			}
		}
		if !keep {
			return nil, r.err
		}
		return l, r.err
	case tagJSON:
		s := r.bytes()
		if r.err != nil {
			return nil, r.err
		}
		if !keep {
			if !json.Valid(s) {
				return nil, errors.New("fields: invalid JSON value")
			}
			return nil, nil
		}
		return decodeJSONValue(s)
	default:
		if r.err != nil {
			return nil, r.err
		}
		return nil, fmt.Errorf("fields: unknown value tag %d", tag)
	}
}
