// Package selfsigned makes the self-signed server certificate that `provision
// serve` generates on its first start, and that the simulator's gateway, the
// attack rig and the benches serve: ECDSA P-256, for the loopback addresses
// and the names given. Clients trust it by its PEM or its SPKI pin, not by a
// CA.
package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"time"

	"github.com/provisionhq/provision/internal/atomicfile"
)

// Certificate is a generated certificate and its key, ready to serve and
// in PEM for the files and for the clients that trust it.
type Certificate struct {
	TLS     tls.Certificate
	CertPEM []byte
	KeyPEM  []byte // PKCS #8
}

// New makes a certificate named commonName, valid from an hour ago (for
// clocks a little behind) for validity, for 127.0.0.1, ::1 and dnsNames.
func New(commonName string, validity time.Duration, dnsNames ...string) (*Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Certificate{
		TLS:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// WriteFiles writes the key (mode 0600) and then the certificate, each
// atomically, so a crash between the two writes leaves no certificate
// without its key.
func (c *Certificate) WriteFiles(certPath, keyPath string) error {
	if err := atomicfile.Write(keyPath, c.KeyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(certPath, c.CertPEM, 0o644)
}
