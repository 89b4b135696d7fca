package server

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

	"github.com/provisionhq/provision/internal/atomicfile"
)

// The names of the generated certificate and key in the data directory.
const (
	CertFile = "server.crt"
	KeyFile  = "server.key"
)

// certificate loads the configured certificate, or the one generated into
// the data directory on an earlier start, or generates it now. It returns
// the certificate, its PEM and whether it was generated.
func certificate(cfg *Config) (tls.Certificate, []byte, bool, error) {
	certPath, keyPath := cfg.TLSCert, cfg.TLSKey
	if certPath == "" {
		if cfg.Data == "" {
			return tls.Certificate{}, nil, false, errors.New("tls: no certificate given and no data directory to generate one into")
		}
		certPath, keyPath = filepath.Join(cfg.Data, CertFile), filepath.Join(cfg.Data, KeyFile)
	}
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	switch {
	case err == nil:
		pemBytes, err := os.ReadFile(certPath)
		return c, pemBytes, false, err
	case cfg.TLSCert != "":
		return c, nil, false, fmt.Errorf("tls_cert: %w", err)
	case !errors.Is(err, fs.ErrNotExist):
		return c, nil, false, fmt.Errorf("certificate in %s: %w", cfg.Data, err)
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return c, nil, false, fmt.Errorf("data directory: %w", err)
	}
	if err := generateCertificate(certPath, keyPath); err != nil {
		return c, nil, false, err
	}
	c, err = tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return c, nil, false, err
	}
	pemBytes, err := os.ReadFile(certPath)
	return c, pemBytes, true, err
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
	if err := atomicfile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
