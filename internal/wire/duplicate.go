package wire

import "bytes"

var (
	firstSuffix     = []byte(`"duplicate":false}`)
	duplicateSuffix = []byte(`"duplicate":true}`)
)

// MarkDuplicate turns the stored bytes of a first answer into the answer
// to a resend, without decoding them: the answers differ only in the
// last field.
func MarkDuplicate(stored []byte) []byte {
	if !bytes.HasSuffix(stored, firstSuffix) {
		return stored
	}
	n := len(stored) - len(firstSuffix)
	return append(stored[:n:n], duplicateSuffix...)
}
