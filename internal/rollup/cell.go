// Package rollup keeps the derived, publishable views of the event log:
// per-day cells of counters, distinct-installation sketches (HyperLogLog)
// and duration sketches (DDSketch). Cells are mergeable, so a week, a month
// or any range is the merge of its days, and several workers (or machines)
// can build them from parts of the log.
//
// Distinct counts use HyperLogLog with precision 16 (65,536 registers,
// standard error about 0.4%); small cells stay in the sparse form, which is
// close to exact.
//
// Rollups hold no installation id. Each id is turned into a 64-bit keyed
// hash (HMAC-SHA256 with a per-deployment key kept by the Store) and only
// that hash enters a HyperLogLog sketch. What the sketch retains: in its
// sparse form (small cells) it keeps, per installation, 25 bits of
// register index and a 6-bit rank derived from the keyed hash; in its dense
// form only the maximum rank per register. Without the key those bits
// cannot be linked to an id; with the key, an id could be tested for
// probable membership of a small cell, so the key is as sensitive as the
// raw events and never leaves the store.
package rollup

import (
	"fmt"
	"net/url"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/axiomhq/hyperloglog"
)

// Views: what a cell counts. Each view has its own dimension keys.
const (
	ViewActive      = "active"       // dims: one of all, product, version, edition, localization, software.type, os.type, os.version, os.edition
	ViewUpdate      = "os_update"    // dims: package
	ViewOSReporting = "os_reporting" // dims: all; installations that sent an os event, the base of update coverage
	ViewUIError     = "ui_error"     // dims: type, code, control
	ViewTask        = "task"         // dims: type and one of version, campaign, country (the location is declared for task events only)
	ViewTaskError   = "task_error"   // dims: type, campaign or version, error_type, error_code
	ViewLicense     = "license"      // dims: site
	ViewTLSIssuer   = "tls_issuer"   // dims: spki
	ViewFileSigner  = "file_signer"  // dims: thumbprint
)

// Key names one cell: a UTC day, a view and the view's dimensions in a
// canonical encoding (see Dims).
type Key struct {
	Day  string // YYYY-MM-DD in UTC
	View string
	Dims string
}

func (k Key) String() string { return k.Day + "/" + k.View + "/" + k.Dims }

// Dims encodes dimension pairs canonically: keys in the given order, values
// query-escaped, so the same pairs always give the same string.
func Dims(pairs ...string) string {
	var buf [128]byte
	return string(appendDims(buf[:0], pairs...))
}

// appendDims appends Dims(pairs...) to b.
func appendDims(b []byte, pairs ...string) []byte {
	if len(pairs)%2 != 0 {
		panic("rollup.Dims: odd number of arguments")
	}
	for i, p := range pairs {
		switch {
		case i == 0:
		case i%2 == 0:
			b = append(b, '&')
		default:
			b = append(b, '=')
		}
		b = appendQueryEscaped(b, p)
	}
	return b
}

// appendQueryEscaped appends url.QueryEscape(s) to b without a string of
// its own: the rollups escape every value with a space or a slash. Most
// values need no escaping and are copied whole.
func appendQueryEscaped(b []byte, s string) []byte {
	i := 0
	for i < len(s) && unreserved[s[i]] {
		i++
	}
	b = append(b, s[:i]...)
	const hex = "0123456789ABCDEF"
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case unreserved[c]:
			b = append(b, c)
		case c == ' ':
			b = append(b, '+')
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return b
}

// unreserved holds the bytes url.QueryEscape leaves as they are.
var unreserved = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
	}
	return t
}()

// ParseDims decodes what Dims encoded.
func ParseDims(s string) (url.Values, error) { return url.ParseQuery(s) }

// Cell is the aggregate of one key. Every field merges associatively and
// commutatively, which is what makes rebuilds and parallel workers agree.
type Cell struct {
	Key
	Events    int64               // records counted
	Weight    int64               // sum of event.count, each record capped
	Failures  int64               // task records whose status is failure
	Installs  *hyperloglog.Sketch // distinct installations (keyed hashes)
	Durations *ddsketch.DDSketch  // task durations in milliseconds; nil when unused

	// distinct is the estimate of Installs stored with the cell (see
	// Encoded.Distinct), valid while known is set: a merge clears it.
	// Code that inserts into Installs directly does so on fresh cells.
	distinct int64
	known    bool
}

// durationAccuracy is the relative accuracy of duration quantiles.
const durationAccuracy = 0.01

// NewCell returns an empty cell for k.
func NewCell(k Key) *Cell {
	return &Cell{Key: k, Installs: hyperloglog.New16()}
}

func newDurations() *ddsketch.DDSketch {
	s, err := ddsketch.LogUnboundedDenseDDSketch(durationAccuracy)
	if err != nil {
		panic(err) // only for an invalid constant accuracy
	}
	return s
}

// Merge adds o into c. Keys must be equal.
func (c *Cell) Merge(o *Cell) error {
	if c.Key != o.Key {
		return fmt.Errorf("rollup: merge of %s into %s", o.Key, c.Key)
	}
	c.known = false
	c.Events += o.Events
	c.Weight += o.Weight
	c.Failures += o.Failures
	if o.Installs != nil {
		if c.Installs == nil {
			c.Installs = hyperloglog.New16()
		}
		if err := c.Installs.Merge(o.Installs); err != nil {
			return fmt.Errorf("rollup: merge installs of %s: %w", c.Key, err)
		}
	}
	if o.Durations != nil && !o.Durations.IsEmpty() {
		if c.Durations == nil {
			c.Durations = newDurations()
		}
		if err := c.Durations.MergeWith(o.Durations); err != nil {
			return fmt.Errorf("rollup: merge durations of %s: %w", c.Key, err)
		}
	}
	return nil
}

// denseFrom is the summed record count above which MergeAll accumulates in
// a dense sketch: merging sparse sketches re-sorts their lists and grows
// with the square of their size, while a dense merge is a register max.
// Below it the sparse form keeps small counts (those near the threshold k)
// exact. Records are an upper bound of installations and cost nothing to
// read, unlike an estimate.
const denseFrom = 20000

// MergeAll merges cells into one cell with key k, in the given order.
func MergeAll(k Key, cells []*Cell) (*Cell, error) {
	var size int64
	for _, c := range cells {
		size += c.Events
	}
	out := &Cell{Key: k, Installs: hyperloglog.New16()}
	if size > denseFrom {
		out.Installs = hyperloglog.New16NoSparse()
	}
	for _, c := range cells {
		if err := out.MergeAs(c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Clone returns a deep copy of c.
func (c *Cell) Clone() *Cell {
	out := *c
	if c.Installs != nil {
		out.Installs = c.Installs.Clone()
	}
	if c.Durations != nil {
		out.Durations = c.Durations.Copy()
	}
	return &out
}

// MergeAs merges o into c regardless of their keys: used to combine days
// or dimensions into a range figure.
func (c *Cell) MergeAs(o *Cell) error {
	saved := o.Key
	o.Key = c.Key
	err := c.Merge(o)
	o.Key = saved
	return err
}

// Distinct estimates the number of distinct installations. A cell read
// from a store answers the estimate stored with it, which is what its
// sketch gives: a dense estimate reads all 65,536 registers, and a report
// asks for one per cell per day.
func (c *Cell) Distinct() int64 {
	if c.known {
		return c.distinct
	}
	if c.Installs == nil {
		return 0
	}
	return int64(c.Installs.Estimate())
}

// StoredDistinct returns the estimate read with the cell from a store, and
// false when the store had none or the cell was merged since.
func (c *Cell) StoredDistinct() (int64, bool) { return c.distinct, c.known }

// Quantile returns the duration at quantile q in milliseconds, and false when
// the cell has no durations.
func (c *Cell) Quantile(q float64) (float64, bool) {
	if c.Durations == nil || c.Durations.IsEmpty() {
		return 0, false
	}
	v, err := c.Durations.GetValueAtQuantile(q)
	if err != nil {
		return 0, false
	}
	return v, true
}

// Encoded is the stored form of a cell's sketches.
type Encoded struct {
	Installs  []byte
	Durations []byte // nil when the cell has none
	// Distinct is the estimate of Installs, stored beside it so that a
	// reader gets the per-day figure without decoding and estimating the
	// sketch. Nil when unknown (rows written before it was stored); the
	// reader then estimates.
	Distinct *int64
}

// Encode serialises the sketches of c and estimates its installations.
func (c *Cell) Encode() (Encoded, error) {
	var e Encoded
	var distinct int64
	if c.Installs != nil {
		b, err := c.Installs.MarshalBinary()
		if err != nil {
			return e, fmt.Errorf("rollup: encode installs: %w", err)
		}
		e.Installs = b
		// Estimate compacts a sparse sketch and may turn it dense; the
		// clone keeps c as it was encoded, so the figure is exactly what
		// the decoded cell would estimate.
		distinct = int64(c.Installs.Clone().Estimate())
	}
	e.Distinct = &distinct
	if c.Durations != nil && !c.Durations.IsEmpty() {
		e.Durations = encodeDurations(c.Durations)
	}
	return e, nil
}

// maxSketchBytes bounds a stored sketch before decoding: a dense p=16 HLL
// is 64 KiB, a duration sketch a few KiB.
const maxSketchBytes = 1 << 20

// DecodeCell rebuilds a cell from its stored form.
func DecodeCell(k Key, events, weight, failures int64, e Encoded) (*Cell, error) {
	c := &Cell{Key: k, Events: events, Weight: weight, Failures: failures, Installs: hyperloglog.New16()}
	if len(e.Installs) > maxSketchBytes || len(e.Durations) > maxSketchBytes {
		return nil, fmt.Errorf("rollup: stored sketch of %s too large", k)
	}
	if len(e.Installs) > 0 {
		if err := c.Installs.UnmarshalBinary(e.Installs); err != nil {
			return nil, fmt.Errorf("rollup: decode installs of %s: %w", k, err)
		}
	}
	if len(e.Durations) > 0 {
		d, err := decodeDurations(e.Durations)
		if err != nil {
			return nil, fmt.Errorf("rollup: decode durations of %s: %w", k, err)
		}
		c.Durations = d
	}
	if e.Distinct != nil {
		if *e.Distinct < 0 {
			return nil, fmt.Errorf("rollup: stored estimate of %s is negative", k)
		}
		c.distinct, c.known = *e.Distinct, true
	}
	return c, nil
}

// MergedValues returns what a store writes for a cell of a delta: the
// column values (day, view, dims, events, weight, failures, installs,
// durations, installs_distinct; sketches encoded) of the stored cell with the delta's merged
// in, or of the delta's own when none is stored (stored nil). It merges
// into stored.
func MergedValues(stored, delta *Cell) ([]any, error) {
	c := delta
	if stored != nil {
		if err := stored.Merge(delta); err != nil {
			return nil, err
		}
		c = stored
	}
	e, err := c.Encode()
	if err != nil {
		return nil, err
	}
	return []any{c.Day, c.View, c.Dims, c.Events, c.Weight, c.Failures, e.Installs, e.Durations, e.Distinct}, nil
}
