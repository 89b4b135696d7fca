package certs_test

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/selfsigned"
)

func TestLoadPool(t *testing.T) {
	c, err := selfsigned.New("pool", time.Hour, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, c.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	pool, err := certs.LoadPool(good)
	if err != nil {
		t.Fatal(err)
	}
	if !pool.Equal(mustPool(t, c.CertPEM)) {
		t.Error("the pool does not hold the file's certificate")
	}

	keyOnly := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyOnly, c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.LoadPool(keyOnly); !errors.Is(err, certs.ErrMalformed) {
		t.Errorf("a file without a certificate: %v, want ErrMalformed", err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, certs.MaxBundleSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.LoadPool(big); !errors.Is(err, certs.ErrMalformed) {
		t.Errorf("a file over MaxBundleSize: %v, want ErrMalformed", err)
	}
	if _, err := certs.LoadPool(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
}

func mustPool(t *testing.T, pemBytes []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in the PEM")
	}
	return pool
}
