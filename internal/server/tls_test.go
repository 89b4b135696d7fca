package server

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/privacy"
)

// The server's TLS 1.2 offers only ECDHE with AEAD ciphers: a client that
// forces a CBC-SHA1 suite (or RSA key transport) is refused, one that asks
// for AES-GCM or ChaCha20-Poly1305 gets through, and TLS 1.3 works.
func TestTLSOffersOnlyAEADWithForwardSecrecy(t *testing.T) {
	dir := t.TempDir()
	s, _ := started(t, sqliteBackend(t, dir), Config{Data: dir})
	addr := strings.TrimPrefix(s.URL, "https://")
	dial := func(c *tls.Config) error {
		c.InsecureSkipVerify = true // the suite is under test, not the chain
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c)
		if err == nil {
			conn.Close()
		}
		return err
	}
	for _, suite := range []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	} {
		if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}}); err == nil {
			t.Errorf("TLS 1.2 with %s was accepted", tls.CipherSuiteName(suite))
		}
	}
	for _, suite := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256} {
		if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}}); err != nil {
			t.Errorf("TLS 1.2 with %s: %v", tls.CipherSuiteName(suite), err)
		}
	}
	if err := dial(&tls.Config{MinVersion: tls.VersionTLS13}); err != nil {
		t.Errorf("TLS 1.3: %v", err)
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 was accepted")
	}
}

// What the server writes into its data directory — the generated key and
// the operator token's hash — is readable by its user alone; the
// certificate is public (agents pin it). The database files are the
// store's, checked by its own tests.
func TestDataFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	if _, err := privacy.NewToken(dir); err != nil {
		t.Fatal(err)
	}
	started(t, sqliteBackend(t, dir), Config{Data: dir})
	for _, name := range []string{KeyFile, privacy.TokenFile} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %v", name, perm)
		}
	}
}
