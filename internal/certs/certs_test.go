package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/certs/certstest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Every certificate of the system store: our pin, thumbprints and serial
// must be what openssl computes.
func TestPinsMatchOpenSSLForSystemCertificates(t *testing.T) {
	certstest.Require(t, "openssl")
	files, err := filepath.Glob("/etc/ssl/certs/*.pem")
	if err != nil || len(files) == 0 {
		if os.Getenv("PROVISION_REQUIRE_SERVICES") != "" {
			t.Fatalf("no certificates in /etc/ssl/certs (install ca-certificates): %v", err)
		}
		t.Skip("no certificates in /etc/ssl/certs")
	}
	checked := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := certs.ParseBundle(data)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if len(parsed) != 1 {
			t.Errorf("%s: %d certificates, want 1", file, len(parsed))
			continue
		}
		info := certs.Describe(parsed[0])
		if want := certstest.SPKIPin(t, file); info.SPKISHA256 != want {
			t.Errorf("%s: spki_sha256 %s, openssl %s", file, info.SPKISHA256, want)
		}
		raw, _ := hex.DecodeString(info.SPKISHA256)
		if info.SPKISHA256Base64 != base64.StdEncoding.EncodeToString(raw) {
			t.Errorf("%s: spki_sha256_b64 %s does not encode the hex pin", file, info.SPKISHA256Base64)
		}
		if want := certstest.Fingerprint(t, file, "sha1"); info.ThumbprintSHA1 != want {
			t.Errorf("%s: thumbprint_sha1 %s, openssl %s", file, info.ThumbprintSHA1, want)
		}
		if want := certstest.Fingerprint(t, file, "sha256"); info.ThumbprintSHA256 != want {
			t.Errorf("%s: thumbprint_sha256 %s, openssl %s", file, info.ThumbprintSHA256, want)
		}
		if !info.SelfSigned {
			// Every certificate in the store is self-signed (roots, and
			// the snakeoil certificate); a false here means our
			// self-signature check is wrong.
			t.Errorf("%s: self_signed=false for a self-signed certificate", file)
		}
		// Names as openssl prints them, where openssl does not escape
		// non-ASCII bytes (we print UTF-8).
		for _, which := range []string{"subject", "issuer"} {
			want := certstest.Name(t, file, which)
			got := info.Subject
			if which == "issuer" {
				got = info.Issuer
			}
			if !opensslEscapedNonASCII(want) && got != want {
				t.Errorf("%s: %s %q, openssl %q", file, which, got, want)
			}
		}
		constraints := string(certstest.Run(t, nil, "openssl", "x509", "-in", file, "-noout", "-ext", "basicConstraints"))
		if want := strings.Contains(constraints, "CA:TRUE"); info.IsCA != want {
			t.Errorf("%s: is_ca=%v, openssl basicConstraints %q", file, info.IsCA, constraints)
		}
		checked++
	}
	t.Logf("checked %d system certificates against openssl", checked)
}

type testPKI struct {
	dir              string
	caFile, leafFile string
	leafKey          string
	chainFile        string // leaf then CA, PEM
}

func newTestPKI(t *testing.T, keyAlg string) testPKI {
	t.Helper()
	certstest.Require(t, "openssl")
	dir := t.TempDir()
	ca, caKey := certstest.MakeCA(t, dir, "Provision Test CA "+keyAlg, keyAlg)
	leaf, leafKey := certstest.Issue(t, dir, "localhost", keyAlg, ca, caKey,
		"subjectAltName=DNS:localhost,IP:127.0.0.1",
		"extendedKeyUsage=serverAuth",
		"basicConstraints=CA:FALSE")
	leafPEM, _ := os.ReadFile(leaf)
	caPEM, _ := os.ReadFile(ca)
	chain := filepath.Join(dir, "chain.pem")
	if err := os.WriteFile(chain, append(leafPEM, caPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	return testPKI{dir: dir, caFile: ca, leafFile: leaf, leafKey: leafKey, chainFile: chain}
}

func checkAgainstOpenSSL(t *testing.T, info certs.Info, file string) {
	t.Helper()
	if want := certstest.SPKIPin(t, file); info.SPKISHA256 != want {
		t.Errorf("spki_sha256 %s, openssl %s", info.SPKISHA256, want)
	}
	if want := certstest.Fingerprint(t, file, "sha1"); info.ThumbprintSHA1 != want {
		t.Errorf("thumbprint_sha1 %s, openssl %s", info.ThumbprintSHA1, want)
	}
	if want := certstest.Fingerprint(t, file, "sha256"); info.ThumbprintSHA256 != want {
		t.Errorf("thumbprint_sha256 %s, openssl %s", info.ThumbprintSHA256, want)
	}
	if want := certstest.Serial(t, file); info.Serial != want {
		t.Errorf("serial %s, openssl %s", info.Serial, want)
	}
	if want := certstest.Name(t, file, "subject"); info.Subject != want {
		t.Errorf("subject %q, openssl %q", info.Subject, want)
	}
	if want := certstest.Name(t, file, "issuer"); info.Issuer != want {
		t.Errorf("issuer %q, openssl %q", info.Issuer, want)
	}
	der := certstest.Run(t, nil, "openssl", "x509", "-in", file, "-outform", "DER")
	if info.DER != base64.StdEncoding.EncodeToString(der) {
		t.Errorf("der differs from openssl's DER")
	}
}

func TestScanTLSAgainstLocalServer(t *testing.T) {
	for _, keyAlg := range []string{"rsa", "ec"} {
		t.Run(keyAlg, func(t *testing.T) {
			pki := newTestPKI(t, keyAlg)
			addr := serveTLS(t, pki)

			chain, err := certs.ScanTLS(context.Background(), addr, "localhost", 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(chain.Certificates) != 2 {
				t.Fatalf("%d certificates, want leaf and CA", len(chain.Certificates))
			}
			checkAgainstOpenSSL(t, chain.Certificates[0], pki.leafFile)
			checkAgainstOpenSSL(t, chain.Certificates[1], pki.caFile)
			leaf := chain.Certificates[0]
			if leaf.IsCA || leaf.SelfSigned {
				t.Errorf("leaf described as %+v", leaf)
			}
			wantAlg, wantBits := "RSA", 2048
			if keyAlg == "ec" {
				wantAlg, wantBits = "ECDSA", 256
			}
			if leaf.PublicKeyAlgorithm != wantAlg || leaf.PublicKeyBits != wantBits {
				t.Errorf("key %s/%d, want %s/%d", leaf.PublicKeyAlgorithm, leaf.PublicKeyBits, wantAlg, wantBits)
			}
			if !chain.Certificates[1].SelfSigned || !chain.Certificates[1].IsCA {
				t.Errorf("CA described as %+v", chain.Certificates[1])
			}
			// The test CA is in no system store: the handshake succeeds and
			// the verdict says why the chain is not trusted.
			if chain.Trusted || !strings.Contains(chain.TrustError, "unknown authority") {
				t.Errorf("trusted=%v error=%q, want untrusted by an unknown authority", chain.Trusted, chain.TrustError)
			}
		})
	}
}

func TestBuildTrustsAChainToAGivenRoot(t *testing.T) {
	pki := newTestPKI(t, "ec")
	data, _ := os.ReadFile(pki.chainFile)
	parsed, err := certs.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(parsed[1])
	chain := certs.Build(parsed, certs.Verification{Roots: roots, DNSName: "localhost"})
	if !chain.Trusted || chain.TrustError != "" {
		t.Fatalf("trusted=%v error=%q, want trusted", chain.Trusted, chain.TrustError)
	}
	chain = certs.Build(parsed, certs.Verification{Roots: roots, DNSName: "example.org"})
	if chain.Trusted || !strings.Contains(chain.TrustError, "example.org") {
		t.Fatalf("trusted=%v error=%q, want a host name mismatch", chain.Trusted, chain.TrustError)
	}
	// The same chain presented without its root cannot be verified.
	chain = certs.Build(parsed[:1], certs.Verification{})
	if chain.Trusted {
		t.Fatal("a leaf of an unknown CA verified against the system roots")
	}
}

func TestFromDERAndConnectionStateAgree(t *testing.T) {
	pki := newTestPKI(t, "rsa")
	data, _ := os.ReadFile(pki.chainFile)
	parsed, err := certs.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	fromDER, err := certs.FromDER([][]byte{parsed[0].Raw, parsed[1].Raw})
	if err != nil {
		t.Fatal(err)
	}
	fromState := certs.FromConnectionState(tls.ConnectionState{PeerCertificates: parsed})
	if len(fromDER.Certificates) != 2 || fromDER.Certificates[0] != fromState.Certificates[0] || fromDER.Certificates[1] != fromState.Certificates[1] {
		t.Fatalf("FromDER and FromConnectionState differ:\n%+v\n%+v", fromDER, fromState)
	}
	checkAgainstOpenSSL(t, fromDER.Certificates[0], pki.leafFile)

	if _, err := certs.FromDER(nil); !errors.Is(err, certs.ErrMalformed) {
		t.Errorf("no certificates: %v, want ErrMalformed", err)
	}
	if _, err := certs.FromDER([][]byte{parsed[0].Raw[:100]}); !errors.Is(err, certs.ErrMalformed) {
		t.Errorf("truncated certificate: %v, want ErrMalformed", err)
	}
}

func TestParseBundleForms(t *testing.T) {
	pki := newTestPKI(t, "rsa")
	der := certstest.Run(t, nil, "openssl", "x509", "-in", pki.leafFile, "-outform", "DER")
	caDER := certstest.Run(t, nil, "openssl", "x509", "-in", pki.caFile, "-outform", "DER")
	keyPEM, _ := os.ReadFile(pki.leafKey)
	leafPEM, _ := os.ReadFile(pki.leafFile)
	trusted := certstest.Run(t, nil, "openssl", "x509", "-in", pki.caFile, "-trustout", "-addtrust", "codeSigning")

	cases := []struct {
		name string
		data []byte
		want int
	}{
		{"one DER", der, 1},
		{"concatenated DER", append(append([]byte{}, der...), caDER...), 2},
		{"PEM with a key block", append(append([]byte{}, keyPEM...), leafPEM...), 1},
		{"openssl trusted certificate", trusted, 1},
	}
	for _, c := range cases {
		got, err := certs.ParseBundle(c.data)
		if err != nil || len(got) != c.want {
			t.Errorf("%s: %d certificates, err %v; want %d", c.name, len(got), err, c.want)
		}
	}
	bad := map[string][]byte{
		"empty":              nil,
		"text":               []byte("hello"),
		"only a key":         keyPEM,
		"truncated DER":      der[:len(der)-10],
		"corrupt PEM base64": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		"too large":          make([]byte, certs.MaxBundleSize+1),
	}
	for name, data := range bad {
		if _, err := certs.ParseBundle(data); !errors.Is(err, certs.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestScanTLSErrors(t *testing.T) {
	// A listener that accepts and closes without TLS.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte("HTTP/1.0 400 not TLS\r\n\r\n"))
			conn.Close()
		}
	}()
	defer func() { ln.Close(); wg.Wait() }()

	if _, err := certs.ScanTLS(context.Background(), ln.Addr().String(), "", time.Second); err == nil {
		t.Error("a plain-text server gave no error")
	}
	if _, err := certs.ScanTLS(context.Background(), "127.0.0.1", "", time.Second); err == nil {
		t.Error("an address without a port gave no error")
	}
}

// serveTLS serves the test chain on 127.0.0.1 until the test ends.
func serveTLS(t *testing.T, pki testPKI) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(pki.chainFile, pki.leafKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				_ = conn.(*tls.Conn).Handshake()
				_, _ = conn.Read(make([]byte, 1))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// opensslEscapedNonASCII reports whether openssl printed a UTF-8 byte as
// \XX, which RFC 2253 allows and we do not do.
func opensslEscapedNonASCII(s string) bool {
	return regexp.MustCompile(`\\[89A-F][0-9A-F]`).MatchString(s)
}
