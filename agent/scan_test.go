package agent

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/certs/certstest"
)

func TestScanTLSRecordsTheServersChain(t *testing.T) {
	srv := newServer(t)
	defer srv.Close()
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	addr := srv.Listener.Addr().String()
	if _, err := a.ScanTLS(ctx, addr, "", 0); !errors.Is(err, ErrNoConsent) {
		t.Fatalf("scan before consent: %v", err)
	}
	_, _ = a.Accept("eu")
	obs, err := a.ScanTLS(ctx, addr, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if obs.SPKISHA256 != certs.SPKISHA256Hex(srv.Certificate()) {
		t.Fatalf("pin %s, want %s", obs.SPKISHA256, certs.SPKISHA256Hex(srv.Certificate()))
	}
	p, _ := a.DryRun(ctx, Upload{})
	var found bool
	for _, ev := range p.Batches[0].Events {
		if ev.Type == "tls_connection" && ev.Fields["tls.spki_sha256"] == obs.SPKISHA256 {
			found = true
		}
	}
	if !found {
		t.Fatal("scanned chain not queued")
	}
}

// signedFiles builds a small Windows program, signs it with osslsigncode
// under a fresh CA, and writes next to it a tampered copy and a file that
// is not a PE image. It returns the directory and the signer's PEM.
func signedFiles(t *testing.T) (dir, signerPEM string) {
	certstest.Require(t, "openssl")
	certstest.Require(t, "osslsigncode")
	pki := t.TempDir()
	caCert, caKey := certstest.MakeCA(t, pki, "Agent Test CA", "rsa")
	cert, key := certstest.Issue(t, pki, "Agent Test Signer", "rsa", caCert, caKey,
		"extendedKeyUsage=codeSigning", "keyUsage=critical,digitalSignature", "basicConstraints=CA:FALSE")
	dir = filepath.Join(t.TempDir(), "files")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	unsigned := filepath.Join(pki, "signme.exe")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", unsigned, "./testdata/signme")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	signed := filepath.Join(dir, "sub", "signed.exe")
	certstest.Run(t, nil, "osslsigncode", "sign", "-certs", cert, "-key", key, "-h", "sha256", "-in", unsigned, "-out", signed)
	data, err := os.ReadFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 0xff
	if err := os.WriteFile(filepath.Join(dir, "tampered.exe"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "readme.txt"), []byte("not a program"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, cert
}

func TestScanFileRecordsSignersRecursively(t *testing.T) {
	dir, signerPEM := signedFiles(t)
	raw, _ := os.ReadFile(signerPEM)
	block, _ := pem.Decode(raw)
	signer, err := certs.ParseDER([][]byte{block.Bytes})
	if err != nil {
		t.Fatal(err)
	}
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	_, _ = a.Accept("eu")
	rep, err := a.ScanFile(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files != 3 || rep.Signed != 2 || rep.Recorded != 2 || rep.NotPE != 1 {
		t.Fatalf("report %+v", rep)
	}
	// Whether each file matched its signature is in the local report only:
	// the terms do not name it, so no event carries it.
	valid := map[bool]bool{}
	for _, s := range rep.Signatures {
		valid[s.DigestValid] = true
	}
	if !valid[true] || !valid[false] {
		t.Fatalf("signatures %+v; want one valid and one tampered", rep.Signatures)
	}
	p, _ := a.DryRun(ctx, Upload{})
	seen := 0
	for _, ev := range p.Batches[0].Events {
		if ev.Type != "file_signature" {
			continue
		}
		seen++
		if ev.Fields["file.spki_sha256"] != certs.SPKISHA256Hex(signer[0]) || ev.Fields["file.thumbprint_sha1"] != certs.ThumbprintSHA1(signer[0]) || len(ev.Fields) != 4 {
			t.Errorf("signer fields %v", ev.Fields)
		}
	}
	if seen == 0 {
		t.Fatal("no file_signature event")
	}
	if _, err := a.ScanFile(ctx, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing path scanned without error")
	}
}

func TestRecordTLSTakesAProxysConnectionState(t *testing.T) {
	srv := newServer(t)
	defer srv.Close()
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	_, _ = a.Accept("eu")
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs})
	if err != nil {
		t.Fatal(err)
	}
	state := conn.ConnectionState()
	conn.Close()
	for range 3 {
		if _, err := a.RecordTLS(ctx, state); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.RecordTLS(ctx, tls.ConnectionState{}); err == nil {
		t.Fatal("a state without certificates was recorded")
	}
	p, _ := a.DryRun(ctx, Upload{})
	ev := p.Batches[0].Events[0]
	if ev.Type != "tls_connection" || ev.Fields["event.count"] != int64(3) || ev.Fields["tls.spki_sha256"] != certs.SPKISHA256Hex(srv.Certificate()) {
		t.Fatalf("event %+v", ev)
	}
}
