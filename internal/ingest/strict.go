package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/wire"
)

// The strict decoder reads a submission as a stream of JSON tokens
// (jsontext, strict by default: duplicate names, invalid UTF-8 and lone
// surrogates are syntax errors) straight into typed events, and validates
// each event as soon as it is read. Limits hold as it goes: the event
// count at each event, the nesting depth at each bracket, list lengths at
// each element, and every allocation is charged to the request's share of
// the memory budget before the next value is read. Nothing is decoded
// into an intermediate map of maps.
//
// Strings and numbers are not copied: they are substrings of one string
// that holds the body, so an event costs its Event, its fields map and one
// interface box per field.

// decodeSlack is what decoding may allocate beyond the body's size: the
// events of a batch of tiny events, the rejections of a batch of bad ones.
const decodeSlack = 1 << 20

// Sizes the decoder charges for what it allocates. They follow the Go
// runtime's layout (swiss maps of 8-slot groups, 16-byte string and
// interface headers) rounded up to the allocator's size classes; a test
// checks them against measured allocations.
const (
	eventSize     = int64(unsafe.Sizeof(provision.Event{}))
	rejectionSize = int64(unsafe.Sizeof(wire.Rejection{}))
	boxSize       = 16 // a string or json.Number behind an interface
	sliceBoxSize  = 32 // a []any behind an interface
	mapGroupSize  = 8*(16+16) + 8
	mapHeaderSize = 64
	seenEntrySize = 2 * (16 + 8) // an event id in the batch's set of ids, growth included
	batchOverhead = 16 << 10     // the decoder, its buffers, the batch's set of ids
	eventSlack    = 64
)

// mapBytes is what a map[string]any of n entries grown one insertion at a
// time has allocated in all, its outgrown tables included.
func mapBytes(n int) int64 {
	if n <= 8 {
		return mapHeaderSize + 288
	}
	// Tables hold up to 7/8 of their slots and double when full; what
	// was allocated on the way sums to about the final table again, and
	// the allocator rounds each up to its size class.
	slots := 8
	for slots*7/8 < n {
		slots *= 2
	}
	return mapHeaderSize + 288 + 5*int64(slots/8)*mapGroupSize/2 + 64
}

// decodeContext is what a batch is decoded and checked against.
type decodeContext struct {
	limits   *Limits
	manifest *manifest.Manifest
	now      time.Time
	res      *reservation
}

// decodedBatch is one submission as the strict decoder hands it out.
type decodedBatch struct {
	provision.Batch                  // Events holds the accepted events only
	Rejected        []wire.Rejection // in index order, at most one per event
	Read            int              // events in the batch

	body       string
	fieldSpans []span // per accepted event: its fields object in body
	sentAt     string // as sent, checked with the envelope
}

type span struct{ start, end int }

// RawFields returns the fields object of accepted event i exactly as the
// client sent it (valid, strict JSON; empty when the event had none), for
// a store that keeps the validated bytes rather than re-encoding the map.
func (b *decodedBatch) RawFields(i int) string {
	s := b.fieldSpans[i]
	return b.body[s.start:s.end]
}

// refuse is a refusal of the whole batch.
func refuse(code, format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, code, fmt.Sprintf(format, args...))
}

var (
	decoderPool = sync.Pool{New: func() any { return jsontext.NewDecoder(noInput) }}
	// noInput is what a pooled decoder reads from, so that it does not
	// keep the last body alive. Nothing reads or writes it.
	noInput = new(bytes.Buffer)
)

// batchDecoder holds the state of one decoding.
type batchDecoder struct {
	c    *decodeContext
	d    *jsontext.Decoder
	body string
	out  *decodedBatch

	regionKnown bool
	pending     []int // indexes into out.Events of events read before the region
	seen        map[string]struct{}
	vs          []manifest.Violation

	unchargedCheck int64 // what the validator allocated, charged after it

	charged int64 // what decoding has allocated so far
	unpaid  int64 // charged but not yet drawn from the budget
}

// decodeBatch decodes and validates body. A refused batch is an
// *apiError; otherwise the events that passed are in Events and the others
// in Rejected.
func decodeBatch(body []byte, c *decodeContext) (*decodedBatch, error) {
	// The string every event shares, and the decoder's own state.
	if err := c.res.grow(int64(len(body)) + batchOverhead); err != nil {
		return nil, err
	}
	bd := &batchDecoder{c: c, body: string(body), out: &decodedBatch{}}
	bd.out.body = bd.body
	bd.d = decoderPool.Get().(*jsontext.Decoder)
	bd.d.Reset(bytes.NewBuffer(body))
	defer func() {
		bd.d.Reset(noInput)
		decoderPool.Put(bd.d)
	}()
	if err := bd.batch(); err != nil {
		return nil, err
	}
	if err := bd.flush(); err != nil {
		return nil, err
	}
	return bd.out, nil
}

// charge records n bytes allocated and draws them from the budget in
// steps, so that the shared counter is not touched per value.
func (bd *batchDecoder) charge(n int64) error {
	bd.charged += n
	bd.unpaid += n
	if bd.charged > bd.c.limits.MaxDecompressedBytes+decodeSlack {
		return errorf(http.StatusRequestEntityTooLarge, wire.CodeDecodedTooLarge,
			fmt.Sprintf("decoding the batch would take more than %d bytes", bd.c.limits.MaxDecompressedBytes+decodeSlack))
	}
	if bd.unpaid >= 64<<10 {
		return bd.flush()
	}
	return nil
}

func (bd *batchDecoder) flush() error {
	n := bd.unpaid
	bd.unpaid = 0
	if err := bd.c.res.grow(n); err != nil {
		return err
	}
	return nil
}

// syntax turns a jsontext error into the refusal that names it.
func (bd *batchDecoder) syntax(err error) *apiError {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return refuse(wire.CodeBadJSON, "the body ends before the batch does")
	}
	if errors.Is(err, jsontext.ErrDuplicateName) {
		return refuse(wire.CodeDuplicateKey, "%s", clipMessage(err))
	}
	msg := clipMessage(err)
	if strings.Contains(msg, "invalid UTF-8") || strings.Contains(msg, "surrogate") {
		return refuse(wire.CodeBadEncoding, "%s", msg)
	}
	return refuse(wire.CodeBadJSON, "%s", msg)
}

func clipMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "jsontext: ")
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	return msg
}

// value reads the next value whole and returns where it starts in body.
func (bd *batchDecoder) value() (jsontext.Value, int, error) {
	v, err := bd.d.ReadValue()
	if err != nil {
		return nil, 0, bd.syntax(err)
	}
	return v, int(bd.d.InputOffset()) - len(v), nil
}

// str returns the string value v that starts at start, a substring of the
// body unless it has escapes.
func (bd *batchDecoder) str(v jsontext.Value, start int) (string, error) {
	if bytes.IndexByte(v, '\\') < 0 {
		return bd.body[start+1 : start+len(v)-1], nil
	}
	u, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return "", bd.syntax(err)
	}
	if err := bd.charge(int64(cap(u)) + boxSize); err != nil {
		return "", err
	}
	return unsafe.String(unsafe.SliceData(u), len(u)), nil
}

// names counts the member names of one object: jsontext keeps them to
// refuse duplicates, in a buffer it reuses up to 64 names or 1 KiB, and
// beyond that in a map of copies, which is charged.
type names struct{ n, bytes int }

// name reads an object member name.
func (bd *batchDecoder) name(ns *names) (string, error) {
	v, start, err := bd.value()
	if err != nil {
		return "", err
	}
	if len(v) == 0 || v[0] != '"' {
		return "", refuse(wire.CodeBadJSON, "object member name expected")
	}
	ns.n++
	ns.bytes += len(v)
	if ns.n > 64 || ns.bytes > 1024 {
		if err := bd.charge(nameCharge(len(v))); err != nil {
			return "", err
		}
	}
	return bd.str(v, start)
}

// nameCharge is what jsontext allocates for a name in a large object: a
// copy in its map and in its buffer, both grown by doubling.
func nameCharge(n int) int64 { return 160 + 4*int64(n) }

// stringValue reads a value that must be a string; ok is false (and the
// value consumed) when it is another kind.
func (bd *batchDecoder) stringValue() (s string, ok bool, err error) {
	if bd.d.PeekKind() != '"' {
		return "", false, bd.skip()
	}
	v, start, err := bd.value()
	if err != nil {
		return "", false, err
	}
	s, err = bd.str(v, start)
	return s, err == nil, err
}

// skip consumes one value, refusing nesting beyond the depth limit before
// reading past it.
func (bd *batchDecoder) skip() error {
	switch bd.d.PeekKind() {
	case '{', '[':
	case 0:
		_, err := bd.d.ReadToken()
		return bd.syntax(err)
	default:
		_, _, err := bd.value()
		return err
	}
	base := bd.d.StackDepth()
	for {
		switch k := bd.d.PeekKind(); k {
		case '{', '[':
			if bd.d.StackDepth()+1 > bd.c.limits.MaxDepth {
				return refuse(wire.CodeTooDeep, "JSON nested deeper than %d levels", bd.c.limits.MaxDepth)
			}
			fallthrough
		case '}', ']', 0:
			if _, err := bd.d.ReadToken(); err != nil {
				return bd.syntax(err)
			}
		default:
			v, err := bd.d.ReadValue()
			if err != nil {
				return bd.syntax(err)
			}
			if k == '"' {
				// It may be a name in a large object: charged as one.
				if kind, _ := bd.d.StackIndex(bd.d.StackDepth()); kind == '{' {
					if err := bd.charge(nameCharge(len(v))); err != nil {
						return err
					}
				}
			}
		}
		if bd.d.StackDepth() == base {
			return nil
		}
	}
}

// open reads an opening delimiter, checking the depth limit first.
func (bd *batchDecoder) open() error {
	if bd.d.StackDepth()+1 > bd.c.limits.MaxDepth {
		return refuse(wire.CodeTooDeep, "JSON nested deeper than %d levels", bd.c.limits.MaxDepth)
	}
	_, err := bd.d.ReadToken()
	if err != nil {
		return bd.syntax(err)
	}
	return nil
}

// member reads the name of the next member of the object being read, or
// its closing brace (done).
func (bd *batchDecoder) member(ns *names) (key string, done bool, err error) {
	if done, err = bd.end('}'); err != nil || done {
		return "", done, err
	}
	key, err = bd.name(ns)
	return key, false, err
}

// end reports whether the next token closes the current object or array,
// consuming it if so.
func (bd *batchDecoder) end(closer jsontext.Kind) (bool, error) {
	switch bd.d.PeekKind() {
	case closer:
		_, err := bd.d.ReadToken()
		if err != nil {
			return false, bd.syntax(err)
		}
		return true, nil
	case 0:
		_, err := bd.d.ReadToken()
		return false, bd.syntax(err)
	}
	return false, nil
}

var envelopeKeys = []string{"batch_id", "installation_id", "region", "manifest_version", "sent_at", "events"}
var eventKeys = []string{"id", "type", "time", "fields"}

// caseOf returns the defined key that name matches in all but letter
// case, or "".
func caseOf(name string, keys []string) string {
	for _, k := range keys {
		if strings.EqualFold(name, k) {
			return k
		}
	}
	return ""
}

func (bd *batchDecoder) batch() error {
	if bd.d.PeekKind() != '{' {
		if err := bd.skip(); err != nil {
			return err
		}
		return refuse(wire.CodeBadJSON, "the body must be one JSON object")
	}
	if err := bd.open(); err != nil {
		return err
	}
	b := &bd.out.Batch
	var ns names
	for {
		key, done, err := bd.member(&ns)
		if err != nil {
			return err
		}
		if done {
			break
		}
		var dst *string
		switch key {
		case "batch_id":
			dst = &b.ID
		case "installation_id":
			dst = &b.InstallationID
		case "region":
			dst = &b.Region
		case "manifest_version":
			dst = &b.ManifestVersion
		case "sent_at":
			dst = &bd.out.sentAt
		case "events":
			if err := bd.events(); err != nil {
				return err
			}
			continue
		default:
			if k := caseOf(key, envelopeKeys); k != "" {
				return refuse(wire.CodeKeyCase, "%q is spelled %q", clipName(key), k)
			}
			return refuse(wire.CodeUnknownField, "unknown field %q", clipName(key))
		}
		s, ok, err := bd.stringValue()
		if err != nil {
			return err
		}
		if !ok {
			return refuse(wire.CodeBadJSON, "%s must be a string", key)
		}
		*dst = s
		if key == "region" {
			// Events read before the region are validated now.
			bd.regionKnown = true
			if err := bd.checkPending(); err != nil {
				return err
			}
		}
	}
	if _, err := bd.d.ReadToken(); err != io.EOF {
		if err != nil {
			return bd.syntax(err)
		}
		return refuse(wire.CodeBadJSON, "data after the batch object")
	}
	bd.regionKnown = true
	return bd.checkPending()
}

func clipName(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return s
}

func (bd *batchDecoder) events() error {
	switch bd.d.PeekKind() {
	case '[':
	case 'n':
		_, err := bd.d.ReadToken()
		if err != nil {
			return bd.syntax(err)
		}
		return nil
	default:
		if err := bd.skip(); err != nil {
			return err
		}
		return refuse(wire.CodeBadJSON, "events must be a list")
	}
	if err := bd.open(); err != nil {
		return err
	}
	for {
		done, err := bd.end(']')
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		// The count is checked before the event is read, so a flood of
		// tiny events costs at most the limit.
		if bd.out.Read == bd.c.limits.MaxEvents {
			return refuse(wire.CodeTooManyEvents, "more than %d events, at most %d allowed per batch", bd.c.limits.MaxEvents, bd.c.limits.MaxEvents)
		}
		if err := bd.event(bd.out.Read); err != nil {
			return err
		}
		bd.out.Read++
	}
}

// event reads event i and validates it, or keeps it for validation once
// the region is known.
func (bd *batchDecoder) event(i int) error {
	if bd.d.PeekKind() != '{' {
		if err := bd.skip(); err != nil {
			return err
		}
		return bd.reject(wire.Rejection{Index: i, Code: wire.RejectMalformed, Message: "an event must be an object"})
	}
	if err := bd.open(); err != nil {
		return err
	}
	var (
		ev     provision.Event
		rej    *wire.Rejection
		fields span
		ns     names
	)
	malformed := func(format string, args ...any) {
		if rej == nil {
			rej = &wire.Rejection{Index: i, Code: wire.RejectMalformed, Message: fmt.Sprintf(format, args...)}
		}
	}
	for {
		key, done, err := bd.member(&ns)
		if err != nil {
			return err
		}
		if done {
			break
		}
		switch key {
		case "id", "type", "time":
			s, ok, err := bd.stringValue()
			if err != nil {
				return err
			}
			if !ok {
				malformed("%s must be a string", key)
				continue
			}
			switch key {
			case "id":
				ev.ID = s
			case "type":
				ev.Type = s
				if et := bd.c.manifest.EventType(s); et != nil {
					ev.Type = et.ID // shared, so the event does not hold the body
				}
			case "time":
				t, err := parseTime(s)
				if err != nil {
					malformed("time must be an RFC 3339 date and time")
					continue
				}
				ev.Time = t
			}
		case "fields":
			start := int(bd.d.InputOffset())
			r, err := bd.fields(i, &ev)
			if err != nil {
				return err
			}
			if r != nil && rej == nil {
				rej = r
			}
			fields = span{start, int(bd.d.InputOffset())}
		default:
			if k := caseOf(key, eventKeys); k != "" {
				return refuse(wire.CodeKeyCase, "events[%d]: %q is spelled %q", i, clipName(key), k)
			}
			if err := bd.skip(); err != nil {
				return err
			}
			malformed("unknown field %q", clipName(key))
		}
	}
	// The span starts before the whitespace and colon that precede the
	// object; trim them so the span is the object alone.
	for fields.start < fields.end && bd.body[fields.start] != '{' && bd.body[fields.start] != 'n' {
		fields.start++
	}
	if rej != nil {
		return bd.reject(*rej)
	}
	return bd.accept(i, ev, fields)
}

// fields reads the fields object into ev.Fields, decoding each declared
// item's value by its declared type. A reason to reject the event found
// while reading is returned; the rest of the checks are the validator's.
func (bd *batchDecoder) fields(i int, ev *provision.Event) (*wire.Rejection, error) {
	switch bd.d.PeekKind() {
	case '{':
	case 'n':
		_, err := bd.d.ReadToken()
		if err != nil {
			return nil, bd.syntax(err)
		}
		return nil, nil
	default:
		if err := bd.skip(); err != nil {
			return nil, err
		}
		return &wire.Rejection{Index: i, Code: wire.RejectMalformed, Path: "fields", Message: "fields must be an object"}, nil
	}
	if err := bd.open(); err != nil {
		return nil, err
	}
	var (
		rej *wire.Rejection
		ns  names
	)
	ev.Fields = make(map[string]any, 8)
	for n := 0; ; n++ {
		key, done, err := bd.member(&ns)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		if n >= manifest.MaxFieldsPerEvent || rej != nil {
			// The event is rejected already: read on without keeping.
			if rej == nil {
				rej = &wire.Rejection{Index: i, Code: string(manifest.CodeOutOfBounds), Path: "fields", Message: fmt.Sprintf("more than %d fields", manifest.MaxFieldsPerEvent)}
			}
			if err := bd.skip(); err != nil {
				return nil, err
			}
			continue
		}
		it := bd.c.manifest.Item(key)
		if it == nil {
			// Kept without its value: the validator names it undeclared.
			ev.Fields[key] = nil
			if err := bd.skip(); err != nil {
				return nil, err
			}
			continue
		}
		v, r, err := bd.typed(i, it, &it.Type)
		if err != nil {
			return nil, err
		}
		if r != nil {
			rej = r
			continue
		}
		ev.Fields[it.ID] = v
	}
	// eventSlack covers what the runtime rounds up beyond the model.
	return rej, bd.charge(mapBytes(len(ev.Fields)) + eventSlack)
}

// typed reads one value of type t for item it. A value of another JSON
// kind is returned in the generic form the validator names in its
// message; objects and nested lists are never kept.
func (bd *batchDecoder) typed(i int, it *manifest.Item, t *manifest.Type) (any, *wire.Rejection, error) {
	switch bd.d.PeekKind() {
	case '"':
		v, start, err := bd.value()
		if err != nil {
			return nil, nil, err
		}
		s, err := bd.str(v, start)
		if err != nil {
			return nil, nil, err
		}
		return s, nil, bd.charge(boxSize)
	case '0':
		v, start, err := bd.value()
		if err != nil {
			return nil, nil, err
		}
		if t.Kind == manifest.KindInteger || t.Kind == manifest.KindDuration {
			if err := canonicalInteger(v); err != nil {
				return nil, nil, err
			}
		}
		return jsonNumber(bd.body[start : start+len(v)]), nil, bd.charge(boxSize)
	case 't', 'f':
		tok, err := bd.d.ReadToken()
		if err != nil {
			return nil, nil, bd.syntax(err)
		}
		return tok.Bool(), nil, nil
	case 'n':
		_, err := bd.d.ReadToken()
		if err != nil {
			return nil, nil, bd.syntax(err)
		}
		return nil, nil, nil
	case '[':
		if t.Kind != manifest.KindList {
			if err := bd.skip(); err != nil {
				return nil, nil, err
			}
			return []any(nil), nil, nil
		}
		return bd.list(i, it, t)
	case '{':
		if err := bd.skip(); err != nil {
			return nil, nil, err
		}
		return map[string]any(nil), nil, nil
	}
	_, err := bd.d.ReadToken()
	return nil, nil, bd.syntax(err)
}

// list reads a list of t.Of, keeping no more than t.MaxItems elements.
func (bd *batchDecoder) list(i int, it *manifest.Item, t *manifest.Type) (any, *wire.Rejection, error) {
	if err := bd.open(); err != nil {
		return nil, nil, err
	}
	l := make([]any, 0, min(t.MaxItems, 8))
	n := 0
	for ; ; n++ {
		done, err := bd.end(']')
		if err != nil {
			return nil, nil, err
		}
		if done {
			break
		}
		if n >= t.MaxItems || bd.d.PeekKind() == '[' {
			if err := bd.skip(); err != nil {
				return nil, nil, err
			}
			if n < t.MaxItems {
				l = append(l, []any(nil)) // the validator names it
			}
			continue
		}
		v, _, err := bd.typed(i, it, t.Of)
		if err != nil {
			return nil, nil, err
		}
		l = append(l, v)
	}
	if err := bd.charge(sliceBoxSize + 16*int64(cap(l))*2); err != nil {
		return nil, nil, err
	}
	if n > t.MaxItems {
		return nil, &wire.Rejection{Index: i, Code: string(manifest.CodeOutOfBounds), Path: "fields." + it.ID,
			Message: fmt.Sprintf("%d items, at most %d allowed", n, t.MaxItems)}, nil
	}
	return l, nil, nil
}

// canonicalInteger refuses the forms of a whole number that no encoder
// produces from an integer: -0, a fraction (1.0) or an exponent (1e3).
// A number that is not whole at all is left to the validator (wrong_type).
func canonicalInteger(v []byte) error {
	if string(v) == "-0" {
		return refuse(wire.CodeNonCanonicalNumber, "-0 is not an integer's canonical form")
	}
	if !bytes.ContainsAny(v, ".eE") {
		return nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err == nil && f == math.Trunc(f) || errors.Is(err, strconv.ErrRange) {
		return refuse(wire.CodeNonCanonicalNumber, "%.40s: an integer is written without fraction or exponent", v)
	}
	return nil
}

// jsonNumber is a substring of the body as a json.Number, the form every
// store and forwarder takes.
func jsonNumber(s string) any { return json.Number(s) }

// reject records a rejection.
func (bd *batchDecoder) reject(r wire.Rejection) error {
	if cap(bd.out.Rejected) == len(bd.out.Rejected) {
		n := max(8, 2*cap(bd.out.Rejected))
		if err := bd.charge(int64(n) * rejectionSize); err != nil {
			return err
		}
		rejected := make([]wire.Rejection, len(bd.out.Rejected), n)
		copy(rejected, bd.out.Rejected)
		bd.out.Rejected = rejected
	}
	bd.out.Rejected = append(bd.out.Rejected, r)
	return bd.charge(messageCharge(&r))
}

// messageCharge is what finding a rejection allocated: its message and
// path, and the formatting that built them.
func messageCharge(r *wire.Rejection) int64 {
	return 160 + 2*int64(len(r.Message)+len(r.Path))
}

// accept validates an event whose decoding found nothing wrong, or keeps
// it for later when the region is not known yet.
func (bd *batchDecoder) accept(i int, ev provision.Event, fields span) error {
	if cap(bd.out.Events) == len(bd.out.Events) {
		n := max(16, 2*cap(bd.out.Events))
		if err := bd.charge(int64(n) * (eventSize + int64(unsafe.Sizeof(span{})))); err != nil {
			return err
		}
		events := make([]provision.Event, len(bd.out.Events), n)
		copy(events, bd.out.Events)
		bd.out.Events = events
		spans := make([]span, len(bd.out.fieldSpans), n)
		copy(spans, bd.out.fieldSpans)
		bd.out.fieldSpans = spans
	}
	if !bd.regionKnown {
		bd.out.Events = append(bd.out.Events, ev)
		bd.out.fieldSpans = append(bd.out.fieldSpans, fields)
		bd.pending = append(bd.pending, i)
		return bd.charge(8)
	}
	r := bd.check(i, &ev)
	if err := bd.charge(bd.unchargedCheck); err != nil {
		return err
	}
	bd.unchargedCheck = 0
	if r != nil {
		return bd.reject(*r)
	}
	bd.out.Events = append(bd.out.Events, ev)
	bd.out.fieldSpans = append(bd.out.fieldSpans, fields)
	return bd.charge(seenEntrySize)
}

// check applies the manifest's validator and the uniqueness of event ids
// in the batch. The time window is checked once the batch's clock skew is
// known (placeInTime).
func (bd *batchDecoder) check(i int, ev *provision.Event) *wire.Rejection {
	had := cap(bd.vs)
	bd.vs = bd.c.manifest.CheckEvent(bd.vs[:0], i, ev, bd.out.Region)
	// What the validator allocated for its findings, charged with the
	// event: the list grown, a path and a message each.
	if cap(bd.vs) > had {
		bd.unchargedCheck += 2 * int64(cap(bd.vs)) * int64(unsafe.Sizeof(manifest.Violation{}))
	}
	for _, v := range bd.vs {
		bd.unchargedCheck += 64 + int64(len(v.Path)+len(v.Message))
	}
	if len(bd.vs) > 0 {
		v := bd.vs[0]
		return &wire.Rejection{Index: i, Code: string(v.Code), Path: v.Path, Message: v.Message}
	}
	if bd.seen == nil {
		bd.seen = make(map[string]struct{}, 64)
	}
	if _, dup := bd.seen[ev.ID]; dup {
		return &wire.Rejection{Index: i, Code: wire.RejectDuplicateEvent, Path: "id", Message: "event id appears earlier in the batch"}
	}
	bd.seen[ev.ID] = struct{}{}
	return nil
}

// checkPending validates the events read before the region, keeping the
// accepted ones in order and the rejections sorted by index.
func (bd *batchDecoder) checkPending() error {
	if len(bd.pending) == 0 {
		return nil
	}
	kept := 0
	var rejected []wire.Rejection
	for k, i := range bd.pending {
		ev := &bd.out.Events[k]
		if r := bd.check(i, ev); r != nil {
			rejected = append(rejected, *r)
			continue
		}
		bd.out.Events[kept] = *ev
		bd.out.fieldSpans[kept] = bd.out.fieldSpans[k]
		kept++
	}
	clear(bd.out.Events[kept:])
	bd.out.Events = bd.out.Events[:kept]
	bd.out.fieldSpans = bd.out.fieldSpans[:kept]
	bd.pending = bd.pending[:0]
	for _, r := range rejected {
		if err := bd.charge(2*rejectionSize + messageCharge(&r)); err != nil {
			return err
		}
	}
	if err := bd.charge(bd.unchargedCheck); err != nil {
		return err
	}
	bd.unchargedCheck = 0
	bd.out.Rejected = mergeByIndex(bd.out.Rejected, rejected)
	return nil
}

func mergeByIndex(a, b []wire.Rejection) []wire.Rejection {
	if len(b) == 0 {
		return a
	}
	out := make([]wire.Rejection, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].Index < b[0].Index {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// parseTime reads an RFC 3339 date and time as strictly as time.Time's
// JSON form (two-digit hours, no 24:00), without copying s.
func parseTime(s string) (time.Time, error) {
	var t time.Time
	err := t.UnmarshalText(unsafe.Slice(unsafe.StringData(s), len(s)))
	return t, err
}
