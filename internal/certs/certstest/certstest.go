// Package certstest runs the independent tools (openssl, osslsigncode) that
// the certificate tests compare against.
package certstest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Require returns the path of an external program, skipping the test when
// it is missing unless PROVISION_REQUIRE_SERVICES is set (as in CI), where a
// missing program fails the test instead.
func Require(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("PROVISION_REQUIRE_SERVICES") != "" {
		tb.Fatalf("%s is required (PROVISION_REQUIRE_SERVICES is set) but not found: %v", name, err)
	}
	tb.Skipf("%s not installed", name)
	return ""
}

// Run runs a program and returns its standard output, failing the test with
// its standard error when it fails.
func Run(tb testing.TB, stdin []byte, name string, args ...string) []byte {
	tb.Helper()
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// Fingerprint returns the lowercase hex digest openssl prints for
// `openssl x509 -fingerprint -DIGEST`, without colons.
func Fingerprint(tb testing.TB, certPEMFile, digest string) string {
	tb.Helper()
	out := strings.TrimSpace(string(Run(tb, nil, "openssl", "x509", "-in", certPEMFile, "-noout", "-fingerprint", "-"+digest)))
	_, value, ok := strings.Cut(out, "=")
	if !ok {
		tb.Fatalf("unexpected openssl fingerprint output %q", out)
	}
	return strings.ToLower(strings.ReplaceAll(value, ":", ""))
}

// SPKIPin returns the SPKI SHA-256 pin of a PEM certificate file as openssl
// computes it: the public key as DER SubjectPublicKeyInfo, then SHA-256.
func SPKIPin(tb testing.TB, certPEMFile string) string {
	tb.Helper()
	pub := Run(tb, nil, "openssl", "x509", "-in", certPEMFile, "-noout", "-pubkey")
	der := Run(tb, pub, "openssl", "pkey", "-pubin", "-outform", "DER")
	out := strings.TrimSpace(string(Run(tb, der, "openssl", "dgst", "-sha256", "-r")))
	hexDigest, _, _ := strings.Cut(out, " ")
	return hexDigest
}

// Serial returns the serial number openssl prints, lowercase hex.
func Serial(tb testing.TB, certPEMFile string) string {
	tb.Helper()
	out := strings.TrimSpace(string(Run(tb, nil, "openssl", "x509", "-in", certPEMFile, "-noout", "-serial")))
	_, value, _ := strings.Cut(out, "=")
	value = strings.ToLower(value)
	// openssl pads to whole octets and prints "00" for a zero serial; we
	// print the magnitude's minimal octets, which agree except for a
	// leading zero octet kept for the sign.
	for len(value) > 2 && strings.HasPrefix(value, "00") {
		value = value[2:]
	}
	return value
}

// MakeCA writes a self-signed CA certificate and key made by openssl into
// dir and returns their paths. keyAlg is "rsa" or "ec".
func MakeCA(tb testing.TB, dir, name, keyAlg string) (certFile, keyFile string) {
	tb.Helper()
	keyFile = dir + "/" + name + ".key"
	certFile = dir + "/" + name + ".pem"
	GenKey(tb, keyFile, keyAlg)
	Run(tb, nil, "openssl", "req", "-new", "-x509", "-key", keyFile, "-out", certFile,
		"-days", "30", "-subj", "/CN="+name+"/O=Provision Test",
		"-addext", "basicConstraints=critical,CA:TRUE",
		"-addext", "keyUsage=critical,keyCertSign,cRLSign")
	return certFile, keyFile
}

// GenKey writes a new private key: RSA 2048 or ECDSA P-256.
func GenKey(tb testing.TB, keyFile, keyAlg string) {
	tb.Helper()
	switch keyAlg {
	case "rsa":
		Run(tb, nil, "openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyFile)
	case "ec":
		Run(tb, nil, "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyFile)
	default:
		tb.Fatalf("unknown key algorithm %q", keyAlg)
	}
}

// Issue writes a certificate for a new key signed by the CA and returns the
// paths of certificate and key. ext is an openssl extension section body,
// for example "extendedKeyUsage=codeSigning".
func Issue(tb testing.TB, dir, name, keyAlg, caCert, caKey string, ext ...string) (certFile, keyFile string) {
	tb.Helper()
	keyFile = dir + "/" + name + ".key"
	certFile = dir + "/" + name + ".pem"
	csr := dir + "/" + name + ".csr"
	extFile := dir + "/" + name + ".ext"
	GenKey(tb, keyFile, keyAlg)
	Run(tb, nil, "openssl", "req", "-new", "-key", keyFile, "-out", csr, "-subj", "/CN="+name+"/O=Provision Test")
	if err := os.WriteFile(extFile, []byte(strings.Join(ext, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	Run(tb, nil, "openssl", "x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey,
		"-CAcreateserial", "-out", certFile, "-days", "30", "-extfile", extFile)
	return certFile, keyFile
}

// Name returns the subject or issuer ("subject" or "issuer") of a PEM
// certificate file in the RFC 2253 form openssl prints.
func Name(tb testing.TB, certPEMFile, which string) string {
	tb.Helper()
	out := string(Run(tb, nil, "openssl", "x509", "-in", certPEMFile, "-noout", "-"+which, "-nameopt", "RFC2253"))
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), which+"="))
}
