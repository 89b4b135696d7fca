// As in the provision command (see cmd/provision/scan.go).
//
//go:debug x509negativeserial=1

package authenticode_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/certs/authenticode"
	"github.com/provisionhq/provision/internal/certs/certstest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "authenticode-test")
	if err != nil {
		panic(err)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			println("goleak:", err.Error())
			code = 1
		}
	}
	os.Exit(code)
}

// expected describes one signature as we made it with osslsigncode.
type expected struct {
	signerCert string // PEM file of the signing certificate
	chain      []string
	timestamp  string // "", "rfc3161" or "countersignature"
}

func TestSignedImagesAgainstOpenSSL(t *testing.T) {
	p := newPKI(t)
	tsa := rfc3161TSA(t, p)
	legacy := legacyTSA(t, p)
	dir := t.TempDir()
	pe64 := unsignedImage(t, "amd64")
	pe32 := unsignedImage(t, "386")

	rsaSHA256 := sign(t, pe64, filepath.Join(dir, "rsa-sha256-rfc3161.exe"),
		"-certs", p.rsaChain, "-key", p.rsaKey, "-h", "sha256", "-ts", tsa)
	cases := []struct {
		name string
		file string
		want []expected
	}{
		{"PE32+ RSA SHA-256 RFC 3161 timestamp", rsaSHA256,
			[]expected{{p.rsaCert, []string{p.rsaCert, p.caCert}, "rfc3161"}}},
		{"PE32 ECDSA SHA-1 legacy countersignature",
			sign(t, pe32, filepath.Join(dir, "ec-sha1-legacy.exe"), "-certs", p.ecChain, "-key", p.ecKey, "-h", "sha1", "-t", legacy),
			// osslsigncode adds the TSA's certificates as they come, so the CA
			// is embedded twice.
			[]expected{{p.ecCert, []string{p.ecCert, p.caCert, p.tsaCert, p.caCert}, "countersignature"}}},
		{"PE32+ ECDSA SHA-256 no timestamp",
			sign(t, pe64, filepath.Join(dir, "ec-sha256.exe"), "-certs", p.ecChain, "-key", p.ecKey, "-h", "sha256"),
			[]expected{{p.ecCert, []string{p.ecCert, p.caCert}, ""}}},
		{"PE32 RSA SHA-1 without the CA",
			sign(t, pe32, filepath.Join(dir, "rsa-sha1.exe"), "-certs", p.rsaCert, "-key", p.rsaKey, "-h", "sha1"),
			[]expected{{p.rsaCert, []string{p.rsaCert}, ""}}},
		{"nested ECDSA SHA-1 with legacy countersignature inside RSA SHA-256",
			sign(t, rsaSHA256, filepath.Join(dir, "nested.exe"), "-nest", "-certs", p.ecChain, "-key", p.ecKey, "-h", "sha1", "-t", legacy),
			[]expected{
				{p.rsaCert, []string{p.rsaCert, p.caCert}, "rfc3161"},
				{p.ecCert, []string{p.ecCert, p.caCert, p.tsaCert, p.caCert}, "countersignature"},
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := authenticode.ScanFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Signed || len(res.Signatures) != len(c.want) {
				t.Fatalf("signed=%v with %d signatures, want %d", res.Signed, len(res.Signatures), len(c.want))
			}
			sigFile := filepath.Join(t.TempDir(), "sig.der")
			certstest.Run(t, nil, "osslsigncode", "extract-signature", "-in", c.file, "-out", sigFile)
			digests := signedDigests(t, sigFile)
			ossl := osslsigncodeDigests(t, c.file)
			if len(digests) != len(c.want) || len(ossl) != len(c.want) {
				t.Fatalf("openssl sees %d signed digests and osslsigncode %d, want %d", len(digests), len(ossl), len(c.want))
			}
			outerCerts := pemCertificates(t, sigFile, t.TempDir())

			for i, sig := range res.Signatures {
				want := c.want[i]
				if sig.NestingLevel != i || sig.TableEntry != 0 {
					t.Errorf("signature %d: nesting %d entry %d", i, sig.NestingLevel, sig.TableEntry)
				}
				// The digest as signed, read by openssl from the DER.
				if sig.DigestAlgorithm != digests[i][0] || sig.ImageDigest != digests[i][1] {
					t.Errorf("signature %d: %s %s, openssl asn1parse %s %s", i, sig.DigestAlgorithm, sig.ImageDigest, digests[i][0], digests[i][1])
				}
				// The digest of the file, as osslsigncode calculates it.
				if sig.ComputedDigest != ossl[i].Calculated || sig.ImageDigest != ossl[i].Current {
					t.Errorf("signature %d: computed %s, osslsigncode %s (signed %s)", i, sig.ComputedDigest, ossl[i].Calculated, ossl[i].Current)
				}
				if !sig.DigestValid || !sig.SignatureValid {
					t.Errorf("signature %d: digest_valid=%v signature_valid=%v (%s)", i, sig.DigestValid, sig.SignatureValid, sig.SignatureError)
				}
				if sig.Signer == nil {
					t.Fatalf("signature %d: no signer", i)
				}
				checkCertificate(t, *sig.Signer, want.signerCert)
				var gotChain []string
				for _, info := range sig.Certificates {
					gotChain = append(gotChain, info.ThumbprintSHA1)
				}
				var wantChain []string
				for _, f := range want.chain {
					wantChain = append(wantChain, certstest.Fingerprint(t, f, "sha1"))
				}
				slices.Sort(gotChain)
				slices.Sort(wantChain)
				if !slices.Equal(gotChain, wantChain) {
					t.Errorf("signature %d: embedded certificates %v, want %v", i, gotChain, wantChain)
				}
				if i == 0 {
					// The outer signature's certificates as openssl lists them.
					if len(outerCerts) != len(sig.Certificates) {
						t.Errorf("openssl lists %d certificates, we %d", len(outerCerts), len(sig.Certificates))
					}
					for _, f := range outerCerts {
						found := false
						for _, info := range sig.Certificates {
							if info.ThumbprintSHA256 == certstest.Fingerprint(t, f, "sha256") {
								checkCertificate(t, info, f)
								found = true
							}
						}
						if !found {
							t.Errorf("certificate %s listed by openssl is missing", f)
						}
					}
				}
				checkTimestamp(t, p, sig, want.timestamp)
			}
		})
	}
}

// checkCertificate compares a description with what openssl says of the
// same certificate.
func checkCertificate(t *testing.T, info certs.Info, pemFile string) {
	t.Helper()
	if want := certstest.Fingerprint(t, pemFile, "sha1"); info.ThumbprintSHA1 != want {
		t.Errorf("%s: thumbprint_sha1 %s, openssl %s", pemFile, info.ThumbprintSHA1, want)
	}
	if want := certstest.Fingerprint(t, pemFile, "sha256"); info.ThumbprintSHA256 != want {
		t.Errorf("%s: thumbprint_sha256 %s, openssl %s", pemFile, info.ThumbprintSHA256, want)
	}
	if want := certstest.SPKIPin(t, pemFile); info.SPKISHA256 != want {
		t.Errorf("%s: spki_sha256 %s, openssl %s", pemFile, info.SPKISHA256, want)
	}
	if want := certstest.Serial(t, pemFile); info.Serial != want {
		t.Errorf("%s: serial %s, openssl %s", pemFile, info.Serial, want)
	}
	if want := certstest.Name(t, pemFile, "subject"); info.Subject != want {
		t.Errorf("%s: subject %q, openssl %q", pemFile, info.Subject, want)
	}
	if want := certstest.Name(t, pemFile, "issuer"); info.Issuer != want {
		t.Errorf("%s: issuer %q, openssl %q", pemFile, info.Issuer, want)
	}
	text := string(certstest.Run(t, nil, "openssl", "x509", "-in", pemFile, "-noout", "-text"))
	bits := regexp.MustCompile(`Public-Key: \((\d+) bit\)`).FindStringSubmatch(text)
	if bits == nil || bits[1] != itoa(info.PublicKeyBits) {
		t.Errorf("%s: public_key_bits %d, openssl %v", pemFile, info.PublicKeyBits, bits)
	}
	wantAlg := map[bool]string{true: "RSA", false: "ECDSA"}[strings.Contains(text, "rsaEncryption")]
	if info.PublicKeyAlgorithm != wantAlg {
		t.Errorf("%s: public_key_algorithm %s, openssl says %s", pemFile, info.PublicKeyAlgorithm, wantAlg)
	}
}

func checkTimestamp(t *testing.T, p testPKI, sig *authenticode.Signature, kind string) {
	t.Helper()
	if kind == "" {
		if sig.Timestamp != nil || sig.SigningTime != nil {
			t.Errorf("unexpected timestamp %+v", sig.Timestamp)
		}
		return
	}
	ts := sig.Timestamp
	if ts == nil || ts.Kind != kind || !ts.Valid || ts.Signer == nil || sig.SigningTime == nil {
		t.Fatalf("timestamp %+v, want a valid %s", ts, kind)
	}
	if want := certstest.Fingerprint(t, p.tsaCert, "sha1"); ts.Signer.ThumbprintSHA1 != want {
		t.Errorf("timestamp signer %s, want the TSA %s", ts.Signer.ThumbprintSHA1, want)
	}
	// Find the answer of our TSA that carries this time, read by openssl.
	var times []string
	if kind == "rfc3161" {
		replies, _ := filepath.Glob(filepath.Join(p.rfc3161Responses, "*.tsr"))
		for _, r := range replies {
			text := string(certstest.Run(t, nil, "openssl", "ts", "-reply", "-in", r, "-text"))
			m := regexp.MustCompile(`Time stamp: (.*)`).FindStringSubmatch(text)
			if m != nil {
				times = append(times, opensslTime(t, m[1]).String())
			}
		}
	} else {
		replies, _ := filepath.Glob(filepath.Join(p.legacyTSAResponses, "*.p7"))
		for _, r := range replies {
			text := string(certstest.Run(t, nil, "openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", r))
			m := regexp.MustCompile(`signingTime[\s\S]*?UTCTIME:(.*)`).FindStringSubmatch(text)
			if m != nil {
				times = append(times, opensslTime(t, m[1]).String())
			}
		}
	}
	if !slices.Contains(times, sig.SigningTime.UTC().String()) || !ts.Time.Equal(*sig.SigningTime) {
		t.Errorf("signing time %v is none of the times openssl reads in the TSA answers %v", sig.SigningTime, times)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestUnsignedAndTamperedImages(t *testing.T) {
	p := newPKI(t)
	pe64 := unsignedImage(t, "amd64")
	res, err := authenticode.ScanFile(pe64)
	if err != nil {
		t.Fatal(err)
	}
	if res.Signed || len(res.Signatures) != 0 {
		t.Fatalf("unsigned image: %+v", res)
	}
	out, _ := json.Marshal(res)
	if string(out) != `{"signed":false,"signatures":[]}` {
		t.Errorf("unsigned JSON %s", out)
	}

	signed := sign(t, pe64, filepath.Join(t.TempDir(), "signed.exe"), "-certs", p.rsaChain, "-key", p.rsaKey, "-h", "sha256")
	image, _ := os.ReadFile(signed)
	image[0x1200] ^= 0x01 // inside .text: the program changed after signing
	tampered := filepath.Join(t.TempDir(), "tampered.exe")
	if err := os.WriteFile(tampered, image, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err = authenticode.ScanFile(tampered)
	if err != nil {
		t.Fatal(err)
	}
	sig := res.Signatures[0]
	if sig.DigestValid || !sig.SignatureValid {
		t.Errorf("tampered image: digest_valid=%v signature_valid=%v, want false and true", sig.DigestValid, sig.SignatureValid)
	}
	ossl := osslsigncodeDigests(t, tampered)
	if sig.ComputedDigest != ossl[0].Calculated || ossl[0].Calculated == ossl[0].Current {
		t.Errorf("computed %s, osslsigncode calculated %s and signed %s", sig.ComputedDigest, ossl[0].Calculated, ossl[0].Current)
	}
}

// The certificate table forms that real files show, made by editing signed
// images, and the broken ones that must be errors.
func TestCertificateTableForms(t *testing.T) {
	p := newPKI(t)
	pe64 := unsignedImage(t, "amd64")
	dir := t.TempDir()
	rsaImage, _ := os.ReadFile(sign(t, pe64, filepath.Join(dir, "a.exe"), "-certs", p.rsaChain, "-key", p.rsaKey, "-h", "sha256"))
	ecImage, _ := os.ReadFile(sign(t, pe64, filepath.Join(dir, "b.exe"), "-certs", p.ecChain, "-key", p.ecKey, "-h", "sha1"))

	start, size, dirEntry := tableOf(t, rsaImage)
	if start+size != len(rsaImage) {
		t.Fatalf("osslsigncode did not put the table at the end")
	}
	headOf := func(image []byte) []byte { s, _, _ := tableOf(t, image); return image[:s] }
	entryOf := func(image []byte) (header, der []byte) {
		s, _, _ := tableOf(t, image)
		length := binary.LittleEndian.Uint32(image[s:])
		content := image[s+8 : s+int(length)]
		n := derLength(content)
		return image[s : s+8], content[:n]
	}
	// entry builds a WIN_CERTIFICATE with the given declared length
	// (declared < 0: exact, no padding counted) and padding to 8.
	entry := func(header, der []byte, includePadding, pad bool) []byte {
		body := append(append([]byte{}, header...), der...)
		padded := (len(body) + 7) / 8 * 8
		declared := len(body)
		if includePadding {
			declared = padded
		}
		binary.LittleEndian.PutUint32(body[0:], uint32(declared))
		if pad {
			body = append(body, make([]byte, padded-len(body))...)
		}
		return body
	}
	withTable := func(head []byte, table ...[]byte) []byte {
		image := append([]byte{}, head...)
		all := bytes.Join(table, nil)
		image = append(image, all...)
		binary.LittleEndian.PutUint32(image[dirEntry+4:], uint32(len(all)))
		return image
	}
	head := headOf(rsaImage)
	rsaHeader, rsaDER := entryOf(rsaImage)
	ecHeader, ecDER := entryOf(ecImage)
	// osslsigncode sets the checksum and the directory entry; the rest of
	// the two signed images must be the same unsigned image.
	checksum := int(binary.LittleEndian.Uint32(rsaImage[0x3c:])) + 24 + 64
	blank := func(b []byte) []byte {
		b = append([]byte{}, b...)
		clear(b[checksum : checksum+4])
		clear(b[dirEntry : dirEntry+8])
		return b
	}
	if !bytes.Equal(blank(head), blank(headOf(ecImage))) {
		t.Fatal("the two signed images differ before their tables")
	}
	if len(rsaDER)%8 == 0 {
		t.Fatalf("the test needs a signature whose length is not a multiple of 8, got %d", len(rsaDER))
	}

	good := map[string]struct {
		image []byte
		n     int
	}{
		"declared length counts padding":                {withTable(head, entry(rsaHeader, rsaDER, true, true)), 1},
		"declared length without padding, padded table": {withTable(head, entry(rsaHeader, rsaDER, false, true)), 1},
		"unaligned length, table ends unpadded at EOF":  {withTable(head, entry(rsaHeader, rsaDER, false, false)), 1},
		"two entries":                         {withTable(head, entry(rsaHeader, rsaDER, true, true), entry(ecHeader, ecDER, true, true)), 2},
		"two entries, first length unaligned": {withTable(head, entry(rsaHeader, rsaDER, false, true), entry(ecHeader, ecDER, false, false)), 2},
		"declared padding beyond the table's size": {func() []byte {
			image := withTable(head, entry(rsaHeader, rsaDER, true, false))
			binary.LittleEndian.PutUint32(image[dirEntry+4:], uint32(8+len(rsaDER)))
			return image[:len(head)+8+len(rsaDER)]
		}(), 1},
		"zero padding after the last entry":   {withTable(head, entry(rsaHeader, rsaDER, true, true), make([]byte, 16)), 1},
		"an entry of another type is skipped": {withTable(head, entry([]byte{0, 0, 0, 0, 0, 2, 1, 0}, []byte("x509 data"), true, true), entry(ecHeader, ecDER, true, true)), 1},
	}
	for name, c := range good {
		t.Run(name, func(t *testing.T) {
			res, err := authenticode.Scan(bytes.NewReader(c.image), int64(len(c.image)))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Signatures) != c.n {
				t.Fatalf("%d signatures, want %d", len(res.Signatures), c.n)
			}
			for i, sig := range res.Signatures {
				if !sig.DigestValid || !sig.SignatureValid {
					t.Errorf("signature %d: digest_valid=%v signature_valid=%v %s", i, sig.DigestValid, sig.SignatureValid, sig.SignatureError)
				}
			}
			if c.n == 2 && (res.Signatures[1].TableEntry != 1 || res.Signatures[1].DigestAlgorithm != "sha1") {
				t.Errorf("second entry read as %+v", res.Signatures[1])
			}
		})
	}

	corrupt := func(image []byte, edit func([]byte)) []byte {
		out := append([]byte{}, image...)
		edit(out)
		return out
	}
	normal := withTable(head, entry(rsaHeader, rsaDER, true, true))

	// Data appended after the table, or kept in an entry's padding, is
	// covered by no signature: reported, and appended data voids the
	// digest as Windows' strict check and osslsigncode do.
	appended := append(append([]byte{}, normal...), "appended payload"...)
	res, err := authenticode.Scan(bytes.NewReader(appended), int64(len(appended)))
	if err != nil || res.TrailingBytes != 16 || res.Signatures[0].DigestValid || res.Signatures[0].ComputedDigest != res.Signatures[0].ImageDigest {
		t.Errorf("appended data: %v %+v", err, res)
	}
	tagged := withTable(head, entry(rsaHeader, append(append([]byte{}, rsaDER...), "tag:42"...), true, true))
	res, err = authenticode.Scan(bytes.NewReader(tagged), int64(len(tagged)))
	if err != nil || res.Signatures[0].UnsignedEntryBytes != 6 || !res.Signatures[0].DigestValid {
		t.Errorf("data in the entry padding: %v %+v", err, res)
	}
	bad := map[string][]byte{
		"file truncated inside the table": normal[:len(normal)-200],
		"table starts past the end":       corrupt(normal, func(b []byte) { binary.LittleEndian.PutUint32(b[dirEntry:], uint32(len(b)+8)) }),
		"table inside the headers":        corrupt(normal, func(b []byte) { binary.LittleEndian.PutUint32(b[dirEntry:], 0x40) }),
		"entry longer than the table":     corrupt(normal, func(b []byte) { binary.LittleEndian.PutUint32(b[start:], uint32(size+8)) }),
		"entry shorter than its header":   corrupt(normal, func(b []byte) { binary.LittleEndian.PutUint32(b[start:], 4) }),
		"stray bytes after the entry":     withTable(head, entry(rsaHeader, rsaDER, true, true), bytes.Repeat([]byte{0xff}, 16)),
		"PKCS#7 cut short":                withTable(head, entry(rsaHeader, rsaDER[:len(rsaDER)/2], true, true)),
		"not PKCS#7":                      withTable(head, entry(rsaHeader, bytes.Repeat([]byte{0x30, 0x03, 0x02, 0x01, 0x01}, 40), true, true)),
		"garbage instead of PKCS#7":       withTable(head, entry(rsaHeader, bytes.Repeat([]byte{0xa5}, 300), true, true)),
	}
	for name, image := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := authenticode.Scan(bytes.NewReader(image), int64(len(image)))
			if !errors.Is(err, authenticode.ErrMalformed) {
				t.Fatalf("error %v, want ErrMalformed", err)
			}
		})
	}
	notPE := map[string][]byte{
		"text":                []byte("#!/bin/sh\necho this is not a program\n" + strings.Repeat(" ", 100)),
		"MZ without PE":       append([]byte("MZ"), make([]byte, 200)...),
		"PE header past EOF":  corrupt(normal[:1024], func(b []byte) { binary.LittleEndian.PutUint32(b[0x3c:], 0x7fffffff) }),
		"shorter than header": []byte("MZ"),
	}
	for name, image := range notPE {
		t.Run(name, func(t *testing.T) {
			_, err := authenticode.Scan(bytes.NewReader(image), int64(len(image)))
			if !errors.Is(err, authenticode.ErrNotPE) {
				t.Fatalf("error %v, want ErrNotPE", err)
			}
		})
	}
}

// derLength is the length of the DER element at the start of b.
func derLength(b []byte) int {
	if b[1] < 0x80 {
		return 2 + int(b[1])
	}
	n := int(b[1] & 0x7f)
	length := 0
	for _, c := range b[2 : 2+n] {
		length = length<<8 | int(c)
	}
	return 2 + n + length
}

// A signer certificate with a negative serial number, as some early CAs
// issued, still gives a readable signature.
func TestNegativeSerialSigner(t *testing.T) {
	newPKI(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "neg.pem"), filepath.Join(dir, "neg.key")
	certstest.Run(t, nil, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
		"-subj", "/CN=Negative Serial Signer", "-days", "2", "-set_serial", "-1234")
	signed := sign(t, unsignedImage(t, "amd64"), filepath.Join(dir, "neg.exe"), "-certs", cert, "-key", key, "-h", "sha256")
	res, err := authenticode.ScanFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	sig := res.Signatures[0]
	if !sig.DigestValid || !sig.SignatureValid || sig.Signer == nil {
		t.Fatalf("signature %+v", sig)
	}
	checkCertificate(t, *sig.Signer, cert)
	if !strings.HasPrefix(sig.Signer.Serial, "-") {
		t.Errorf("serial %s, want negative", sig.Signer.Serial)
	}
}

func TestScanDir(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	signed := sign(t, unsignedImage(t, "386"), filepath.Join(dir, "signed.exe"), "-certs", p.ecChain, "-key", p.ecKey, "-h", "sha256")
	image, _ := os.ReadFile(signed)
	sub := filepath.Join(dir, "sub", "deeper")
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		filepath.Join(sub, "copy.dll"):         image,
		filepath.Join(dir, "unsigned.exe"):     mustRead(t, unsignedImage(t, "386")),
		filepath.Join(dir, "readme.txt"):       []byte("not a program"),
		filepath.Join(dir, "truncated.exe"):    image[:len(image)-100],
		filepath.Join(dir, "sub", "empty.bin"): nil,
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A link out of the tree is not followed.
	if err := os.Symlink(unsignedImage(t, "amd64"), filepath.Join(dir, "link.exe")); err != nil {
		t.Fatal(err)
	}
	res, err := authenticode.ScanDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range res.Files {
		rel, _ := filepath.Rel(dir, f.Path)
		switch {
		case f.Error != "":
			got[rel] = "error"
		case f.Signed && f.Signatures[0].DigestValid:
			got[rel] = "signed"
		default:
			got[rel] = "unsigned"
		}
	}
	want := map[string]string{
		"signed.exe":          "signed",
		"sub/deeper/copy.dll": "signed",
		"unsigned.exe":        "unsigned",
		"truncated.exe":       "error",
	}
	if len(got) != len(want) || res.NotPE != 2 || !res.Failed() {
		t.Fatalf("got %v, %d not PE, want %v and 2", got, res.NotPE, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := authenticode.ScanDir(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: %v", err)
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A timestamp token that stamps other data is reported, not believed: no
// signing time comes from it.
func TestTimestampForOtherData(t *testing.T) {
	p := newPKI(t)
	signed := sign(t, unsignedImage(t, "amd64"), filepath.Join(t.TempDir(), "lying.exe"),
		"-certs", p.rsaChain, "-key", p.rsaKey, "-h", "sha256", "-ts", lyingTSA(t, p))
	res, err := authenticode.ScanFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	sig := res.Signatures[0]
	if sig.Timestamp == nil || sig.Timestamp.Valid || sig.Timestamp.Error != "the timestamp is for another signature" || sig.SigningTime != nil {
		t.Fatalf("timestamp %+v, signing time %v", sig.Timestamp, sig.SigningTime)
	}
	if !sig.DigestValid || !sig.SignatureValid {
		t.Errorf("the signature itself: digest_valid=%v signature_valid=%v", sig.DigestValid, sig.SignatureValid)
	}
}
