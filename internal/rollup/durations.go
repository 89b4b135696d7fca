package rollup

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/DataDog/sketches-go/ddsketch"
)

// The stored form of a duration sketch is its bins, not the library's own
// encoding: that one trusts its input and a damaged value could make it
// allocate without bound. Bins are (representative value, count) pairs that
// map back to the same bins under the same relative accuracy.
//
//	version byte (1) | uvarint n | n × (float64 value, float64 count), big endian
const durationsFormat = 1

// Bounds on a stored duration sketch: task.duration is at most 48 hours,
// and 1% accuracy needs under 2,000 bins to span 1 ms to 48 h.
const (
	maxDurationBins = 4096
	maxDurationMs   = 48 * 3600 * 1000 * 1.05
	maxBinCount     = 1e15
)

var errDurations = errors.New("malformed duration sketch")

func encodeDurations(d *ddsketch.DDSketch) []byte {
	type bin struct{ v, n float64 }
	var bins []bin
	d.ForEach(func(v, n float64) bool {
		bins = append(bins, bin{v, n})
		return false
	})
	out := []byte{durationsFormat}
	out = binary.AppendUvarint(out, uint64(len(bins)))
	for _, b := range bins {
		out = binary.BigEndian.AppendUint64(out, math.Float64bits(b.v))
		out = binary.BigEndian.AppendUint64(out, math.Float64bits(b.n))
	}
	return out
}

func decodeDurations(b []byte) (*ddsketch.DDSketch, error) {
	if len(b) < 2 || b[0] != durationsFormat {
		return nil, errDurations
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > maxDurationBins || uint64(len(b)-1-k) != n*16 {
		return nil, errDurations
	}
	d := newDurations()
	p := b[1+k:]
	for i := uint64(0); i < n; i++ {
		v := math.Float64frombits(binary.BigEndian.Uint64(p[16*i:]))
		c := math.Float64frombits(binary.BigEndian.Uint64(p[16*i+8:]))
		if !(v >= 0 && v <= maxDurationMs) || !(c > 0 && c <= maxBinCount) {
			return nil, errDurations
		}
		if err := d.AddWithCount(v, c); err != nil {
			return nil, errDurations
		}
	}
	return d, nil
}
