package authenticode_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzSeeds refreshes the fuzz seed corpus from freshly signed
// images. It runs only with PROVISION_WRITE_FUZZ_SEEDS=1; the seeds are
// committed.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("PROVISION_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set PROVISION_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	p := newPKI(t)
	tsa := rfc3161TSA(t, p)
	legacy := legacyTSA(t, p)
	dir := t.TempDir()
	pe64 := unsignedImage(t, "amd64")
	pe32 := unsignedImage(t, "386")
	rsa := sign(t, pe64, filepath.Join(dir, "rsa.exe"), "-certs", p.rsaChain, "-key", p.rsaKey, "-h", "sha256", "-ts", tsa)
	images := map[string]string{
		"rsa-sha256-rfc3161": rsa,
		"ec-sha1-legacy":     sign(t, pe32, filepath.Join(dir, "ec.exe"), "-certs", p.ecChain, "-key", p.ecKey, "-h", "sha1", "-t", legacy),
		"nested":             sign(t, rsa, filepath.Join(dir, "nested.exe"), "-nest", "-certs", p.ecChain, "-key", p.ecKey, "-h", "sha1", "-t", legacy),
		"unsigned":           pe64,
		"ev-signed-real":     evSignedFile(t),
	}
	for name, file := range images {
		image, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		start, size, dirEntry := tableOf(t, image)
		// Keep the first 1 KiB (all headers) and move the table right
		// after it, so a seed is a few kilobytes.
		const keep = 1024
		seed := append([]byte{}, image[:keep]...)
		if size > 0 {
			table := image[start : start+size]
			seed = append(seed, table...)
			binary.LittleEndian.PutUint32(seed[dirEntry:], keep)
			writeSeed(t, "FuzzSignedData", name, table[8:])
		}
		writeSeed(t, "FuzzScan", name, seed)
	}
}

func writeSeed(t *testing.T, fuzzer, name string, data []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", fuzzer)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
