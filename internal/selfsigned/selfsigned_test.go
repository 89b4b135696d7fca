package selfsigned

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestNewServesAndVerifies(t *testing.T) {
	c, err := New("test server", 24*time.Hour, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "test server" {
		t.Errorf("common name %q", leaf.Subject.CommonName)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 25*time.Hour {
		t.Errorf("validity %v, want 24h after an hour's grace", got)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CertPEM) {
		t.Fatal("CertPEM holds no certificate")
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "example.org"}); err == nil {
		t.Error("verified for a name it does not carry")
	}
	if _, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		t.Errorf("PEM pair: %v", err)
	}
}

func TestSerialsDiffer(t *testing.T) {
	a, err := New("a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New("b", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	la, _ := x509.ParseCertificate(a.TLS.Certificate[0])
	lb, _ := x509.ParseCertificate(b.TLS.Certificate[0])
	if la.SerialNumber.Cmp(lb.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}

func TestWriteFiles(t *testing.T) {
	c, err := New("files", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := c.WriteFiles(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	if err := c.WriteFiles(filepath.Join(dir, "missing", "server.crt"), filepath.Join(dir, "missing", "server.key")); err == nil {
		t.Error("wrote into a directory that does not exist")
	}
}
