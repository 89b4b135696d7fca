package authenticode_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/provisionhq/provision/internal/certs/authenticode"
)

// signedImageOfSize signs the test program padded with random data (an
// overlay, as installers carry) to about size bytes.
func signedImageOfSize(b *testing.B, size int) string {
	b.Helper()
	p := newPKI(b)
	image, err := os.ReadFile(unsignedImage(b, "amd64"))
	if err != nil {
		b.Fatal(err)
	}
	if pad := size - len(image); pad > 0 {
		overlay := make([]byte, pad)
		_, _ = rand.Read(overlay)
		image = append(image, overlay...)
	}
	dir := b.TempDir()
	unsigned := filepath.Join(dir, "big.exe")
	if err := os.WriteFile(unsigned, image, 0o600); err != nil {
		b.Fatal(err)
	}
	signed := sign(b, unsigned, filepath.Join(dir, "big-signed.exe"), "-certs", p.rsaChain, "-key", p.rsaKey, "-h", "sha256")
	res, err := authenticode.ScanFile(signed)
	if err != nil || !res.Signatures[0].DigestValid {
		b.Fatalf("benchmark image does not verify: %v", err)
	}
	return signed
}

// BenchmarkScanFile scans a signed image, image digest included. Bytes/op
// stays the same from 5 to 50 MB: the file is streamed, not read whole.
func BenchmarkScanFile(b *testing.B) {
	for _, mb := range []int{5, 50} {
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			file := signedImageOfSize(b, mb<<20)
			info, _ := os.Stat(file)
			b.SetBytes(info.Size())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := authenticode.ScanFile(file); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScanDirectory scans a folder of signed programs mixed with files
// that are not programs, as a scan of an installation folder does.
func BenchmarkScanDirectory(b *testing.B) {
	p := newPKI(b)
	signed := sign(b, unsignedImage(b, "amd64"), filepath.Join(b.TempDir(), "signed.exe"), "-certs", p.rsaChain, "-key", p.rsaKey, "-h", "sha256")
	image, _ := os.ReadFile(signed)
	dir := b.TempDir()
	var total int64
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("program-%02d.exe", i)), image, 0o600); err != nil {
			b.Fatal(err)
		}
		total += int64(len(image))
		text := []byte(fmt.Sprintf("readme %d\n", i))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("readme-%02d.txt", i)), text, 0o600); err != nil {
			b.Fatal(err)
		}
		total += int64(len(text))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		res, err := authenticode.ScanDir(context.Background(), dir)
		if err != nil {
			b.Fatal(err)
		}
		verified := 0
		for _, f := range res.Files {
			if f.FileResult != nil && f.Signed && f.Signatures[0].DigestValid {
				verified++
			}
		}
		if verified != 20 || res.NotPE != 20 {
			b.Fatalf("%d signed programs verified and %d other files, want 20 and 20", verified, res.NotPE)
		}
	}
}
