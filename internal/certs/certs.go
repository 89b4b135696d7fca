// Package certs describes X.509 certificates the way the data manifest
// declares them: the DER itself, the SPKI pin (RFC 7469: SHA-256 of the DER
// SubjectPublicKeyInfo, not of the PKCS#1 key nor of the whole certificate)
// and the SHA-1 and SHA-256 thumbprints of the DER certificate.
//
// It also builds the chain report for a secure connection or a certificate
// file: every presented certificate, leaf first, and the verdict of verifying
// it against the system roots with the presented intermediates. The verdict
// is reported, never enforced, so an intercepting or self-signed chain is
// seen rather than refused.
package certs

import (
	"bytes"
	//lint:ignore SA1019 old code-signing certificates still carry DSA keys; we only measure their size
	"crypto/dsa"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"time"
)

// Info is the description of one certificate. Digests are lowercase hex,
// the DER is standard base64, as the wire contract requires.
type Info struct {
	Subject            string    `json:"subject"`
	Issuer             string    `json:"issuer"`
	Serial             string    `json:"serial"` // lowercase hex of the serial number's magnitude, "-" first if negative
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	SPKISHA256         string    `json:"spki_sha256"`
	SPKISHA256Base64   string    `json:"spki_sha256_b64"`
	ThumbprintSHA1     string    `json:"thumbprint_sha1"`
	ThumbprintSHA256   string    `json:"thumbprint_sha256"`
	SelfSigned         bool      `json:"self_signed"`
	IsCA               bool      `json:"is_ca"`
	PublicKeyAlgorithm string    `json:"public_key_algorithm"`
	PublicKeyBits      int       `json:"public_key_bits"`
	DER                string    `json:"der"`
}

// SPKISHA256 returns the SHA-256 of the certificate's DER SubjectPublicKeyInfo.
func SPKISHA256(cert *x509.Certificate) [sha256.Size]byte {
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo)
}

// SPKISHA256Hex returns the SPKI pin as lowercase hex.
func SPKISHA256Hex(cert *x509.Certificate) string {
	pin := SPKISHA256(cert)
	return hex.EncodeToString(pin[:])
}

// SPKISHA256Base64 returns the SPKI pin in standard base64, the form used by
// HTTP public key pinning and most pin lists.
func SPKISHA256Base64(cert *x509.Certificate) string {
	pin := SPKISHA256(cert)
	return base64.StdEncoding.EncodeToString(pin[:])
}

// ThumbprintSHA1 returns the SHA-1 of the DER certificate, the thumbprint
// Windows shows and code-signing policies refer to.
func ThumbprintSHA1(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// ThumbprintSHA256 returns the SHA-256 of the DER certificate.
func ThumbprintSHA256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Describe reports everything the manifest may ask about one certificate.
func Describe(cert *x509.Certificate) Info {
	algorithm, bits := publicKeySize(cert)
	return Info{
		Subject:            distinguishedName(cert.RawSubject, cert.Subject),
		Issuer:             distinguishedName(cert.RawIssuer, cert.Issuer),
		Serial:             serialHex(cert),
		NotBefore:          cert.NotBefore.UTC(),
		NotAfter:           cert.NotAfter.UTC(),
		SPKISHA256:         SPKISHA256Hex(cert),
		SPKISHA256Base64:   SPKISHA256Base64(cert),
		ThumbprintSHA1:     ThumbprintSHA1(cert),
		ThumbprintSHA256:   ThumbprintSHA256(cert),
		SelfSigned:         isSelfSigned(cert),
		IsCA:               cert.BasicConstraintsValid && cert.IsCA,
		PublicKeyAlgorithm: algorithm,
		PublicKeyBits:      bits,
		DER:                base64.StdEncoding.EncodeToString(cert.Raw),
	}
}

func serialHex(cert *x509.Certificate) string {
	if cert.SerialNumber == nil {
		return ""
	}
	sign := ""
	if cert.SerialNumber.Sign() < 0 {
		sign = "-"
	}
	magnitude := cert.SerialNumber.Bytes()
	if len(magnitude) == 0 {
		return "00"
	}
	return sign + hex.EncodeToString(magnitude)
}

// isSelfSigned is true when the certificate names itself as issuer and its
// own key verifies its signature. CheckSignature is used rather than
// CheckSignatureFrom because the latter refuses non-CA certificates, and a
// self-signed leaf (typical of interception and test servers) is exactly what
// we need to recognise.
func isSelfSigned(cert *x509.Certificate) bool {
	if !bytes.Equal(cert.RawSubject, cert.RawIssuer) {
		return false
	}
	return cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil
}

func publicKeySize(cert *x509.Certificate) (string, int) {
	switch key := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", key.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", key.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	case *ecdh.PublicKey:
		return "X25519", 256
	case *dsa.PublicKey:
		return "DSA", key.P.BitLen()
	}
	if cert.PublicKeyAlgorithm != x509.UnknownPublicKeyAlgorithm {
		return cert.PublicKeyAlgorithm.String(), 0
	}
	return "unknown", 0
}
