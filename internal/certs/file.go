package certs

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/provisionhq/provision/internal/limitread"
)

// ReadFile reads a certificate file (a PEM bundle or DER) of at most
// MaxBundleSize bytes.
func ReadFile(path string) ([]byte, error) {
	data, err := limitread.File(path, MaxBundleSize)
	var tooLarge *limitread.TooLargeError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return data, err
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
