package authenticode

import (
	"crypto"
	"fmt"
	"hash"
	"io"
	"sync"
)

// hashBufferSize is the read size of the image hash: large enough that the
// per-call cost vanishes next to SHA-256, small enough that memory does not
// depend on the file.
const hashBufferSize = 256 << 10

var hashBuffers = sync.Pool{New: func() any { b := make([]byte, hashBufferSize); return &b }}

// imageDigests computes the Authenticode image hash of the file once for
// every algorithm asked, in a single streaming pass. The hash covers the
// file from its start to the certificate table, leaving out the checksum
// field and the security directory entry (both change when a signature is
// added). Bytes after the certificate table are not covered: the table is
// the last thing in a signed image, and signers (signtool, osslsigncode)
// hash up to its start. For an image without a table, the whole file is
// covered, padded with zeros to a multiple of 8 as signers do before they
// append the table.
func imageDigests(r io.ReaderAt, l layout, algorithms []crypto.Hash) (map[crypto.Hash][]byte, error) {
	if len(algorithms) == 0 {
		return nil, nil
	}
	hashes := make(map[crypto.Hash]hash.Hash, len(algorithms))
	writers := make([]io.Writer, 0, len(algorithms))
	for _, alg := range algorithms {
		if _, done := hashes[alg]; done {
			continue
		}
		if !alg.Available() {
			return nil, fmt.Errorf("digest algorithm %v is not available", alg)
		}
		h := alg.New()
		hashes[alg] = h
		writers = append(writers, h)
	}
	var w io.Writer = writers[0]
	if len(writers) > 1 {
		w = io.MultiWriter(writers...)
	}

	end := l.size
	if l.certStart > 0 {
		end = l.certStart
	}
	// The skipped fields lie in the headers, before the table, in this order.
	type span struct{ from, to int64 }
	spans := []span{{0, l.checksumOffset}}
	next := l.checksumOffset + 4
	if l.dirEntryOffset >= 0 {
		spans = append(spans, span{next, l.dirEntryOffset})
		next = l.dirEntryOffset + dataDirectorySize
	}
	spans = append(spans, span{next, end})

	bufp := hashBuffers.Get().(*[]byte)
	defer hashBuffers.Put(bufp)
	buf := *bufp
	for _, s := range spans {
		if s.to < s.from {
			return nil, fmt.Errorf("%w: header fields overlap the certificate table", ErrMalformed)
		}
		if _, err := io.CopyBuffer(w, io.NewSectionReader(r, s.from, s.to-s.from), buf); err != nil {
			return nil, fmt.Errorf("hash image: %w", err)
		}
	}
	if l.certStart == 0 {
		if pad := (certTableAlignment - end%certTableAlignment) % certTableAlignment; pad > 0 {
			_, _ = w.Write(make([]byte, pad))
		}
	}
	sums := make(map[crypto.Hash][]byte, len(hashes))
	for alg, h := range hashes {
		sums[alg] = h.Sum(nil)
	}
	return sums, nil
}
