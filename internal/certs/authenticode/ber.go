package authenticode

import (
	"errors"
	"fmt"
)

// maxBERDepth bounds the nesting of the ASN.1 we hand to the PKCS#7 parser.
// A signature with three nested signatures, each with a timestamp token and
// certificates, stays below 40 levels.
const maxBERDepth = 64

// maxBERElements bounds the number of ASN.1 elements in one signature. The
// PKCS#7 parser builds an object per element; a real signature with a dozen
// certificates has a few thousand, while a hostile table of empty elements
// would have millions.
const maxBERElements = 500_000

// berElementLength walks the first BER element of data and returns how many
// bytes it spans. It exists because the PKCS#7 parser transcodes BER to DER
// recursively without a depth limit: a few megabytes of nested
// indefinite-length headers in a hostile file would exhaust the goroutine
// stack, which is a fatal error no recover can catch. Walking it first,
// iteratively bounded by maxBERDepth, turns that into an ordinary error. The
// length also lets us drop the zero padding that many signers count in the
// WIN_CERTIFICATE length.
func berElementLength(data []byte) (int, error) {
	var w berWalker
	return w.element(data, 0, 0)
}

type berWalker struct{ elements int }

func (w *berWalker) element(data []byte, offset, depth int) (int, error) {
	if depth > maxBERDepth {
		return 0, fmt.Errorf("ASN.1 nested deeper than %d levels", maxBERDepth)
	}
	if w.elements++; w.elements > maxBERElements {
		return 0, fmt.Errorf("more than %d ASN.1 elements", maxBERElements)
	}
	start := offset
	if offset >= len(data) {
		return 0, errors.New("ASN.1 element truncated")
	}
	identifier := data[offset]
	offset++
	if identifier&0x1f == 0x1f { // high tag number form
		for {
			if offset >= len(data) {
				return 0, errors.New("ASN.1 tag truncated")
			}
			b := data[offset]
			offset++
			if offset-start > 6 {
				return 0, errors.New("ASN.1 tag too long")
			}
			if b&0x80 == 0 {
				break
			}
		}
	}
	constructed := identifier&0x20 != 0
	if offset >= len(data) {
		return 0, errors.New("ASN.1 length truncated")
	}
	first := data[offset]
	offset++
	length := 0
	switch {
	case first < 0x80:
		length = int(first)
	case first == 0x80:
		if !constructed {
			return 0, errors.New("ASN.1 indefinite length on a primitive element")
		}
		// Children until the end-of-contents octets 00 00.
		for {
			if offset+2 <= len(data) && data[offset] == 0 && data[offset+1] == 0 {
				return offset + 2 - start, nil
			}
			n, err := w.element(data, offset, depth+1)
			if err != nil {
				return 0, err
			}
			offset += n
		}
	default:
		octets := int(first & 0x7f)
		if octets > 4 || offset+octets > len(data) {
			return 0, errors.New("ASN.1 length truncated or too large")
		}
		for _, b := range data[offset : offset+octets] {
			length = length<<8 | int(b)
		}
		offset += octets
	}
	if length < 0 || length > len(data)-offset {
		return 0, errors.New("ASN.1 element runs past the end of the data")
	}
	if constructed {
		inner := data[:offset+length]
		for child := offset; child < offset+length; {
			n, err := w.element(inner, child, depth+1)
			if err != nil {
				return 0, err
			}
			child += n
		}
	}
	return offset + length - start, nil
}
