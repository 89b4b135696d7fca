package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/certs/certstest"
)

func runScan(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

type scanChain struct {
	Certificates []struct {
		Subject    string `json:"subject"`
		SPKISHA256 string `json:"spki_sha256"`
		SHA1       string `json:"thumbprint_sha1"`
		DER        string `json:"der"`
		SelfSigned bool   `json:"self_signed"`
	} `json:"certificates"`
	Trusted    bool   `json:"trusted"`
	TrustError string `json:"trust_error"`
}

func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	certstest.Require(t, "openssl")
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certstest.Run(t, nil, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=localhost",
		"-addext", "subjectAltName=DNS:localhost")
	return certFile, keyFile
}

func TestScanCert(t *testing.T) {
	certFile, _ := selfSigned(t)
	code, stdout, stderr := runScan(t, "scan", "cert", certFile)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var chain scanChain
	if err := json.Unmarshal([]byte(stdout), &chain); err != nil {
		t.Fatal(err)
	}
	if len(chain.Certificates) != 1 || chain.Certificates[0].SPKISHA256 != certstest.SPKIPin(t, certFile) {
		t.Fatalf("output %s", stdout)
	}
	if chain.Trusted || chain.TrustError == "" || !chain.Certificates[0].SelfSigned {
		t.Errorf("a self-signed certificate: trusted=%v %q", chain.Trusted, chain.TrustError)
	}

	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	_ = os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	if code, _, stderr := runScan(t, "scan", "cert", garbage); code != exitError || !strings.Contains(stderr, "malformed certificate data") {
		t.Errorf("garbage: exit %d, %q", code, stderr)
	}
}

func TestScanFileErrors(t *testing.T) {
	text := filepath.Join(t.TempDir(), "notes.txt")
	_ = os.WriteFile(text, []byte(strings.Repeat("not a program\n", 10)), 0o600)
	if code, stdout, stderr := runScan(t, "scan", "file", text); code != exitError || stdout != "" || !strings.Contains(stderr, "not a PE image") {
		t.Errorf("text file: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := runScan(t, "scan", "file", filepath.Join(t.TempDir(), "missing.exe")); code != exitError || stderr == "" {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
}

// signedSeed is a real osslsigncode signature behind the headers of the
// signed program (its body left out, so its digest no longer matches),
// kept as a fuzz seed of the authenticode package.
func signedSeed(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../internal/certs/authenticode/testdata/fuzz/FuzzScan/rsa-sha256-rfc3161")
	if err != nil {
		t.Fatal(err)
	}
	literal := strings.TrimSuffix(strings.TrimPrefix(string(raw), "go test fuzz v1\n[]byte("), ")\n")
	image, err := strconv.Unquote(literal)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(image)
}

func TestScanFileDirectory(t *testing.T) {
	dir := t.TempDir()
	image := signedSeed(t)
	_ = os.WriteFile(filepath.Join(dir, "a.exe"), image, 0o600)
	_ = os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("text"), 0o600)
	code, stdout, stderr := runScan(t, "scan", "file", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct {
		Files []struct {
			Path   string `json:"path"`
			Signed bool   `json:"signed"`
			Error  string `json:"error"`
		} `json:"files"`
		NotPE int `json:"not_pe"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 || !res.Files[0].Signed || res.NotPE != 1 {
		t.Fatalf("output %s", stdout)
	}
	// A truncated program is listed with its error: a finding, exit 1.
	_ = os.WriteFile(filepath.Join(dir, "b.exe"), image[:len(image)-100], 0o600)
	code, stdout, _ = runScan(t, "scan", "file", dir)
	if code != exitFinding || !strings.Contains(stdout, "truncated") {
		t.Fatalf("exit %d, output %s", code, stdout)
	}
}

func TestScanFileSigned(t *testing.T) {
	file := filepath.Join(t.TempDir(), "signed.exe")
	_ = os.WriteFile(file, signedSeed(t), 0o600)
	code, stdout, stderr := runScan(t, "scan", "file", file)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct {
		Signed     bool `json:"signed"`
		Signatures []struct {
			Signer struct {
				ThumbprintSHA1 string `json:"thumbprint_sha1"`
			} `json:"signer"`
			DigestAlgorithm string  `json:"digest_algorithm"`
			DigestValid     *bool   `json:"digest_valid"`
			SigningTime     *string `json:"signing_time"`
			Timestamp       struct {
				Kind string `json:"kind"`
			} `json:"timestamp"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Signed || len(res.Signatures) != 1 {
		t.Fatalf("output %s", stdout)
	}
	sig := res.Signatures[0]
	if sig.DigestAlgorithm != "sha256" || sig.DigestValid == nil || *sig.DigestValid || sig.SigningTime == nil ||
		sig.Timestamp.Kind != "rfc3161" || len(sig.Signer.ThumbprintSHA1) != 40 {
		t.Errorf("signature %+v", sig)
	}
}

func TestScanTLS(t *testing.T) {
	certFile, keyFile := selfSigned(t)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
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
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_ = conn.(*tls.Conn).Handshake()
			_, _ = conn.Read(make([]byte, 1))
			conn.Close()
		}
	}()
	defer func() { ln.Close(); wg.Wait() }()

	code, stdout, stderr := runScan(t, "scan", "tls", ln.Addr().String(), "--servername", "localhost", "--timeout", "5s")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var chain scanChain
	if err := json.Unmarshal([]byte(stdout), &chain); err != nil {
		t.Fatal(err)
	}
	if len(chain.Certificates) != 1 || chain.Certificates[0].SPKISHA256 != certstest.SPKIPin(t, certFile) ||
		chain.Certificates[0].SHA1 != certstest.Fingerprint(t, certFile, "sha1") {
		t.Fatalf("output %s", stdout)
	}
	if chain.Trusted {
		t.Error("a self-signed server certificate was trusted")
	}

	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := closed.Addr().String()
	closed.Close()
	if code, _, stderr := runScan(t, "scan", "tls", addr, "--timeout", "2s"); code != exitError || !strings.Contains(stderr, "connect") {
		t.Errorf("closed port: exit %d, %q", code, stderr)
	}
}
