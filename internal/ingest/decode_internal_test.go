package ingest

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/provisionhq/provision/internal/wire"
)

// TestBombStopsEarly checks that decompression stops as soon as the output
// passes the limit: only a small part of a long compressed body is read.
func TestBombStopsEarly(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var text bytes.Buffer
	for text.Len() < 16<<20 {
		fmt.Fprintf(&text, "%016x", rng.Uint64())
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(text.Bytes())
	zw.Close()
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	zs := enc.EncodeAll(text.Bytes(), nil)
	enc.Close()

	l := DefaultLimits()
	l.MaxDecompressedBytes = 1 << 20
	l.MaxCompressionRatio = 1 << 30
	for name, body := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zs} {
		in := &countingReader{r: bytes.NewReader(body)}
		var src io.Reader
		if name == "gzip" {
			src, _ = gzip.NewReader(in)
		} else {
			d, err := getZstd(in, l.MaxDecompressedBytes)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			src = d
		}
		a := newAdmission(l)
		res := &reservation{a: a}
		buf := new([]byte)
		err := readLimited(buf, src, in, &l, res)
		if ae, ok := err.(*apiError); !ok || ae.Code != wire.CodeDecompressedTooLarge {
			t.Fatalf("%s: err = %v", name, err)
		}
		// 1 MiB of output needs about 0.6 MiB of input; allow for the
		// decompressor's read-ahead, but not for the 9 MiB body.
		if in.n > 2<<20 {
			t.Errorf("%s: read %d of %d compressed bytes", name, in.n, len(body))
		}
		if len(*buf) > int(l.MaxDecompressedBytes)+readChunk {
			t.Errorf("%s: expanded %d bytes", name, len(*buf))
		}
		res.free()
		if a.inUse.Load() != 0 {
			t.Errorf("%s: budget not returned", name)
		}
	}
}
