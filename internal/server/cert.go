package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/provisionhq/provision/internal/selfsigned"
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

// generateCertificate writes a self-signed certificate for the loopback
// names and this host's name. Agents trust it by its SPKI pin, not by a CA,
// so its names matter little and its life can be long.
func generateCertificate(certPath, keyPath string) error {
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	c, err := selfsigned.New("provision server", 10*365*24*time.Hour, names...)
	if err != nil {
		return err
	}
	return c.WriteFiles(certPath, keyPath)
}
