package authenticode

import (
	"bytes"
	"errors"
	"testing"
)

// The seeds in testdata/fuzz are small PE headers with certificate tables
// taken from images signed by osslsigncode (RSA and ECDSA, SHA-1 and
// SHA-256, RFC 3161 and legacy timestamps, nested signatures); see
// TestWriteFuzzSeeds.

func FuzzScan(f *testing.F) {
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Scan(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrNotPE) && !errors.Is(err, ErrMalformed) && res != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		if res.Signed != (len(res.Signatures) > 0) {
			t.Fatalf("signed=%v with %d signatures", res.Signed, len(res.Signatures))
		}
		for _, sig := range res.Signatures {
			if sig.DigestValid != (sig.ComputedDigest == sig.ImageDigest && res.TrailingBytes == 0) {
				t.Fatalf("digest_valid=%v for %s and %s", sig.DigestValid, sig.ComputedDigest, sig.ImageDigest)
			}
		}
	})
}

func FuzzSignedData(f *testing.F) {
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		var p parser
		_ = p.parseSignedData(data, 0, 0)
		if len(p.signatures) > maxSignaturesPerFile {
			t.Fatalf("%d signatures", len(p.signatures))
		}
	})
}

func FuzzBERElementLength(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Add(bytes.Repeat([]byte{0x30, 0x80}, 100))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := berElementLength(data)
		if err == nil && (n < 2 || n > len(data)) {
			t.Fatalf("length %d of %d bytes", n, len(data))
		}
	})
}

func TestBERLimits(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x30, 0x80}, maxBERDepth+2), make([]byte, 2*(maxBERDepth+2))...)
	if _, err := berElementLength(deep); err == nil {
		t.Error("nesting beyond the limit accepted")
	}
	many := append([]byte{0x30, 0x80}, bytes.Repeat([]byte{0x05, 0x00}, maxBERElements+1)...)
	many = append(many, 0, 0)
	if _, err := berElementLength(many); err == nil {
		t.Error("more elements than the limit accepted")
	}
	var p parser
	if err := p.parseSignedData(many, 0, 0); !errors.Is(err, ErrMalformed) {
		t.Errorf("parseSignedData: %v, want ErrMalformed", err)
	}
	ok := []byte{0x30, 0x80, 0x30, 0x03, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00}
	if n, err := berElementLength(ok); err != nil || n != 9 {
		t.Errorf("indefinite length with padding: %d %v, want 9", n, err)
	}
}
