// Package authenticode reads the Authenticode signatures of Windows PE and
// PE32+ images (EXE, DLL, SYS, EFI): every entry of the certificate table,
// the signatures nested in them, their certificates and timestamps, and
// whether the image digest each one signs matches the file as it is.
//
// Why this shape. The PE headers and the certificate table are read by our
// own bounded reader instead of debug/pe, which loads the COFF symbol and
// string tables whole (memory proportional to the file) and knows nothing of
// the certificate table. PKCS#7 SignedData is parsed by
// github.com/smallstep/pkcs7, the maintained fork of go.mozilla.org/pkcs7,
// which handles BER, certificate sets and signer verification. We evaluated
// github.com/sassoftware/relic/v8's authenticode.VerifyPE, which does the
// whole job, but on real files it: allocates the declared table size before
// any check (a hostile header asks for 4 GiB); rejects a last entry whose
// length is not a multiple of 8 when the table ends without padding; turns a
// digest mismatch into an error with no result, where we must report
// digest_valid false with the signer; and pulls about a hundred modules
// (cloud KMS clients, PKCS#11) into go.mod.
//
// What smallstep/pkcs7 gets wrong for Authenticode, and how we work around
// it: its BER-to-DER transcoder recurses without a depth limit, so nested
// headers in a hostile file can exhaust the stack (a fatal error, not a
// panic) — berElementLength walks and bounds the input first; it returns
// the content of SpcIndirectDataContent without its SEQUENCE header (right
// for the message digest, so Verify works, but it cannot be unmarshalled as
// is) — we decode its two fields one after the other; it does not read
// nested signatures, RFC 3161 tokens or legacy countersignatures from the
// unsigned attributes — we do; and it exposes no panic guarantee on
// malformed input — parsePKCS7 recovers and reports an error.
package authenticode

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
)

var (
	// ErrNotPE marks a file that is not a PE image at all.
	ErrNotPE = errors.New("not a PE image")
	// ErrMalformed marks a PE image or signature that is corrupt,
	// truncated or beyond our limits.
	ErrMalformed = errors.New("malformed signed image")
)

// FileResult is what a scan of one file found.
type FileResult struct {
	Signed     bool         `json:"signed"`
	Signatures []*Signature `json:"signatures"`
	// TrailingBytes counts bytes after the certificate table. No signature
	// covers them (signers hash up to the table), so data appended to a
	// signed program hides there; when present, no signature is
	// digest_valid, as Windows' strict padding check and osslsigncode
	// also refuse such files.
	TrailingBytes int64 `json:"trailing_bytes,omitempty"`
}

// ScanFile scans the file at path. See Scan.
func ScanFile(path string) (*FileResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	result, err := Scan(f, info.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return result, nil
}

// Scan reads the signatures of a PE image of the given size and checks each
// one's image digest against the file. It reads the headers and the
// certificate table (bounded by maxCertificateTable) and streams the rest
// through the hashes once, so memory does not depend on the file size. An
// image without signatures gives Signed false; a malformed one an error
// wrapping ErrNotPE or ErrMalformed.
func Scan(r io.ReaderAt, size int64) (*FileResult, error) {
	l, err := readLayout(r, size)
	if err != nil {
		return nil, err
	}
	result := &FileResult{Signatures: []*Signature{}}
	if l.certSize == 0 {
		return result, nil
	}
	entries, err := readEntries(r, l)
	if err != nil {
		return nil, err
	}
	var p parser
	for _, e := range entries {
		if e.certType != winCertTypePKCS7 {
			continue // X.509 and reserved types carry no Authenticode signature
		}
		first := len(p.signatures)
		if err := p.parseSignedData(e.content, e.index, 0); err != nil {
			return nil, fmt.Errorf("certificate table entry %d: %w", e.index, err)
		}
		// Zero padding after the PKCS#7 is normal; anything else is data
		// that no signature covers (some installers keep a tag there).
		if n, err := berElementLength(e.content); err == nil && first < len(p.signatures) {
			p.signatures[first].UnsignedEntryBytes = countNonZero(e.content[n:])
		}
	}
	if len(p.signatures) == 0 {
		return result, nil
	}
	algorithms := make([]crypto.Hash, 0, len(p.signatures))
	for _, sig := range p.signatures {
		algorithms = append(algorithms, sig.hash)
	}
	digests, err := imageDigests(r, l, algorithms)
	if err != nil {
		return nil, err
	}
	result.TrailingBytes = l.size - (l.certStart + l.certSize)
	for _, sig := range p.signatures {
		computed := fmt.Sprintf("%x", digests[sig.hash])
		sig.ComputedDigest = computed
		sig.DigestValid = computed == sig.ImageDigest && result.TrailingBytes == 0
	}
	result.Signed = true
	result.Signatures = p.signatures
	return result, nil
}

func countNonZero(b []byte) int {
	n := 0
	for _, c := range b {
		if c != 0 {
			n++
		}
	}
	return n
}
