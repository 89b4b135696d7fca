package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Limits on what we accept from outside. A real chain has a handful of
// certificates and a CA bundle a few hundred; these bounds only stop abuse.
const (
	MaxChainLength  = 64       // certificates in one presented chain
	MaxBundleSize   = 16 << 20 // bytes of a PEM bundle or DER file
	MaxBundleLength = 10000    // certificates in one bundle
)

// PEM block types a bundle may carry; others (keys, CRLs) are skipped.
const (
	pemCertificate = "CERTIFICATE"
	pemTrusted     = "TRUSTED CERTIFICATE" // OpenSSL's form with trust settings appended
)

// ErrMalformed marks input that is not a certificate, a chain or a bundle.
var ErrMalformed = errors.New("malformed certificate data")

// Chain is what a connection or a file presented, leaf first, and whether
// it verifies.
type Chain struct {
	Certificates []Info `json:"certificates"`
	Trusted      bool   `json:"trusted"`
	TrustError   string `json:"trust_error,omitempty"`
}

// Verification says against what a chain is verified. The zero value means
// the system roots, now, without a host name check.
type Verification struct {
	Roots       *x509.CertPool // nil: the system roots
	DNSName     string         // when set, the leaf must be valid for it
	CurrentTime time.Time      // zero: now
}

// Build describes certs (leaf first) and verifies the leaf with the others as
// intermediates.
func Build(certs []*x509.Certificate, v Verification) Chain {
	chain := Chain{Certificates: make([]Info, 0, len(certs))}
	for _, cert := range certs {
		chain.Certificates = append(chain.Certificates, Describe(cert))
	}
	if len(certs) == 0 {
		chain.TrustError = "no certificate presented"
		return chain
	}
	intermediates := x509.NewCertPool()
	for _, cert := range certs[1:] {
		intermediates.AddCert(cert)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         v.Roots,
		Intermediates: intermediates,
		DNSName:       v.DNSName,
		CurrentTime:   v.CurrentTime,
		// The chain may be a server's, a client's or a code signer's; the
		// question asked here is only whether it leads to a trusted root.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		chain.TrustError = err.Error()
		return chain
	}
	chain.Trusted = true
	return chain
}

// FromConnectionState reports the chain a TLS server presented, from the
// client's side of the connection (a host application's proxy dialling the
// origin). The host name the client asked for (SNI) is checked when set.
func FromConnectionState(state tls.ConnectionState) Chain {
	return Build(state.PeerCertificates, Verification{DNSName: state.ServerName})
}

// FromDER reports a chain given as DER certificates, leaf first, as a host
// application's TLS proxy sees it.
func FromDER(ders [][]byte) (Chain, error) {
	certs, err := ParseDER(ders)
	if err != nil {
		return Chain{}, err
	}
	return Build(certs, Verification{}), nil
}

// ParseDER parses DER certificates, leaf first, within MaxChainLength.
func ParseDER(ders [][]byte) ([]*x509.Certificate, error) {
	if len(ders) == 0 {
		return nil, fmt.Errorf("%w: no certificate given", ErrMalformed)
	}
	if len(ders) > MaxChainLength {
		return nil, fmt.Errorf("%w: %d certificates in a chain, at most %d", ErrMalformed, len(ders), MaxChainLength)
	}
	certs := make([]*x509.Certificate, 0, len(ders))
	for i, der := range ders {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrMalformed, i, err)
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

// ParseBundle reads certificates from PEM (any number of CERTIFICATE
// blocks, other blocks such as keys are skipped) or, when the data holds no
// PEM block, from DER (one certificate or several concatenated).
func ParseBundle(data []byte) ([]*x509.Certificate, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(data), MaxBundleSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrMalformed)
	}
	var certs []*x509.Certificate
	rest := data
	sawPEM := false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		if block.Type != pemCertificate && block.Type != pemTrusted {
			continue
		}
		if len(certs) == MaxBundleLength {
			return nil, fmt.Errorf("%w: more than %d certificates", ErrMalformed, MaxBundleLength)
		}
		der := block.Bytes
		if block.Type == pemTrusted {
			// OpenSSL's trusted form is the certificate followed by its
			// trust settings; the certificate is the first DER element.
			cert, err := parseFirstCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("%w: PEM certificate %d: %v", ErrMalformed, len(certs), err)
			}
			certs = append(certs, cert)
			continue
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: PEM certificate %d: %v", ErrMalformed, len(certs), err)
		}
		certs = append(certs, cert)
	}
	if sawPEM {
		if len(certs) == 0 {
			return nil, fmt.Errorf("%w: no CERTIFICATE block in the PEM data", ErrMalformed)
		}
		return certs, nil
	}
	certs, err := x509.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%w: neither PEM nor DER certificates: %v", ErrMalformed, err)
	}
	if len(certs) > MaxBundleLength {
		return nil, fmt.Errorf("%w: more than %d certificates", ErrMalformed, MaxBundleLength)
	}
	return certs, nil
}

func parseFirstCertificate(der []byte) (*x509.Certificate, error) {
	n, err := derElementLength(der)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der[:n])
}

// derElementLength returns the encoded length of the first DER element.
func derElementLength(der []byte) (int, error) {
	if len(der) < 2 {
		return 0, errors.New("truncated DER")
	}
	first := int(der[1])
	if first < 0x80 {
		if 2+first > len(der) {
			return 0, errors.New("truncated DER")
		}
		return 2 + first, nil
	}
	octets := first & 0x7f
	if octets == 0 || octets > 4 || 2+octets > len(der) {
		return 0, errors.New("unsupported DER length")
	}
	length := 0
	for _, b := range der[2 : 2+octets] {
		length = length<<8 | int(b)
	}
	if length < 0 || 2+octets+length > len(der) {
		return 0, errors.New("truncated DER")
	}
	return 2 + octets + length, nil
}
