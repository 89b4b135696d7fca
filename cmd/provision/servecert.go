package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/provisionhq/provision/internal/certs"
)

// serverCertificate loads the configured certificate, or the one generated
// into the data directory on an earlier start, or generates it now. It
// returns the certificate and whether it was generated.
func serverCertificate(cfg *serveConfig) (tls.Certificate, bool, error) {
	if cfg.TLSCert != "" {
		c, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return c, false, fmt.Errorf("tls_cert: %w", err)
		}
		return c, false, nil
	}
	certPath, keyPath := filepath.Join(cfg.Data, "server.crt"), filepath.Join(cfg.Data, "server.key")
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return c, false, fmt.Errorf("certificate in %s: %w", cfg.Data, err)
	}
	if err := generateCertificate(certPath, keyPath); err != nil {
		return c, false, err
	}
	c, err = tls.LoadX509KeyPair(certPath, keyPath)
	return c, true, err
}

// generateCertificate writes a self-signed ECDSA P-256 certificate for the
// loopback names and this host's name. Agents trust it by its SPKI pin,
// not by a CA, so its names matter little and its life can be long.
func generateCertificate(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "provision server"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// The key first and private, so a crash between the two writes leaves
	// no certificate without its key.
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFileAtomic writes a whole file or nothing: a crash leaves the old
// file or the new one, never half of one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// spkiPin is the SHA-256 of the certificate's SubjectPublicKeyInfo, in
// lowercase hex and in base64 (the form of HTTP public key pinning).
func spkiPin(c tls.Certificate) (hexPin, b64Pin string, err error) {
	if len(c.Certificate) == 0 {
		return "", "", errors.New("no certificate")
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return "", "", err
	}
	return certs.SPKISHA256Hex(leaf), certs.SPKISHA256Base64(leaf), nil
}
