package certs

import (
	"crypto/x509"
	"fmt"
	"io"
	"os"
)

// ReadFile reads a certificate file (a PEM bundle or DER) of at most
// MaxBundleSize bytes.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBundleSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, ErrMalformed, MaxBundleSize)
	}
	return data, nil
}

// LoadPool reads a PEM file of the certificates to trust, such as the roots
// that sign a server's certificate or that server's certificate itself.
func LoadPool(path string) (*x509.CertPool, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: %w: no PEM certificate in it", path, ErrMalformed)
	}
	return pool, nil
}
