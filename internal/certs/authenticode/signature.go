package authenticode

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/provisionhq/provision/internal/certs"
	"github.com/smallstep/pkcs7"
)

// Object identifiers of Authenticode and of the signature attributes read.
var (
	oidNestedSignature   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 4, 1}
	oidRFC3161Timestamp  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 3, 3, 1}
	oidCountersignature  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 6}
	oidSigningTime       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidMessageDigest     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSpcPEImageData    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 15}
	oidDigestMD5         = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
	oidDigestSHA1        = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidDigestSHA256      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidDigestSHA384      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidDigestSHA512      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	maxNestingDepth      = 4  // a primary signature and up to three levels of nesting
	maxSignaturesPerFile = 64 // across all entries and nesting
)

// Signature is one Authenticode signature: an entry of the certificate table
// or a signature nested inside one.
type Signature struct {
	TableEntry      int          `json:"table_entry"`   // index of the WIN_CERTIFICATE it was found in
	NestingLevel    int          `json:"nesting_level"` // 0 for the entry's own signature, 1 for one nested in it, ...
	Signer          *certs.Info  `json:"signer"`        // nil only when the signer's certificate is missing
	Certificates    []certs.Info `json:"certificates"`  // every certificate the signature embeds
	DigestAlgorithm string       `json:"digest_algorithm"`
	ImageDigest     string       `json:"image_digest"`    // as signed, lowercase hex
	ComputedDigest  string       `json:"computed_digest"` // of the file as it is now
	DigestValid     bool         `json:"digest_valid"`    // the two are equal
	SignatureValid  bool         `json:"signature_valid"` // the signer's key verifies the signed attributes and they cover the content
	SignatureError  string       `json:"signature_error,omitempty"`
	SigningTime     *time.Time   `json:"signing_time,omitempty"` // from the timestamp, when there is a valid one
	Timestamp       *Timestamp   `json:"timestamp,omitempty"`
	// UnsignedEntryBytes counts non-zero bytes after the PKCS#7 inside its
	// certificate table entry: data the signature does not cover.
	UnsignedEntryBytes int `json:"unsigned_entry_bytes,omitempty"`

	hash crypto.Hash
}

// Timestamp is the countersignature that dates a signature.
type Timestamp struct {
	Kind            string       `json:"kind"` // "rfc3161" or "countersignature" (the legacy Authenticode form)
	Time            time.Time    `json:"time"`
	DigestAlgorithm string       `json:"digest_algorithm"`
	Signer          *certs.Info  `json:"signer,omitempty"`
	Certificates    []certs.Info `json:"certificates,omitempty"` // RFC 3161 tokens carry their own
	Valid           bool         `json:"valid"`                  // it covers this signature and its signer's key verifies it
	Error           string       `json:"error,omitempty"`
}

// spcIndirectDataContent is the signed content of an Authenticode signature.
type spcIndirectDataContent struct {
	Data          spcAttributeTypeAndOptionalValue
	MessageDigest digestInfo
}

type spcAttributeTypeAndOptionalValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"optional"`
}

type digestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

type issuerAndSerial struct {
	IssuerName   asn1.RawValue
	SerialNumber *big.Int
}

// signerInfo is decoded here for legacy countersignatures, which the PKCS#7
// library does not expose. The authenticated attributes are kept raw: their
// signature covers their DER re-tagged as a SET.
type signerInfo struct {
	Version                   int
	IssuerAndSerialNumber     issuerAndSerial
	DigestAlgorithm           pkix.AlgorithmIdentifier
	AuthenticatedAttributes   asn1.RawValue `asn1:"optional,tag:0"`
	DigestEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedDigest           []byte
	UnauthenticatedAttributes asn1.RawValue `asn1:"optional,tag:1"`
}

// tstInfo is the start of an RFC 3161 TSTInfo; the optional fields after
// genTime are not needed.
type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint digestInfo
	SerialNumber   *big.Int
	GenTime        time.Time `asn1:"generalized"`
}

// parser collects the signatures of one file.
type parser struct {
	signatures []*Signature
}

// parseSignedData parses one PKCS#7 SignedData holding an Authenticode
// signature and, recursively, the signatures nested in it.
func (p *parser) parseSignedData(der []byte, tableEntry, level int) error {
	if level >= maxNestingDepth {
		return fmt.Errorf("%w: signatures nested deeper than %d levels", ErrMalformed, maxNestingDepth)
	}
	p7, err := parsePKCS7(der)
	if err != nil {
		return err
	}
	if len(p7.Signers) == 0 {
		return fmt.Errorf("%w: signature has no signer", ErrMalformed)
	}
	// The library returns the content without its SEQUENCE header, which is
	// exactly what the messageDigest attribute covers in Authenticode; the
	// two fields are therefore decoded one after the other.
	var indirect spcIndirectDataContent
	rest, err := asn1.Unmarshal(p7.Content, &indirect.Data)
	if err == nil {
		_, err = asn1.Unmarshal(rest, &indirect.MessageDigest)
	}
	if err != nil || len(p7.Content) == 0 {
		return fmt.Errorf("%w: the signed content is not Authenticode SpcIndirectDataContent", ErrMalformed)
	}
	if !indirect.Data.Type.Equal(oidSpcPEImageData) {
		return fmt.Errorf("%w: the signature is for %v, not a PE image", ErrMalformed, indirect.Data.Type)
	}
	hash, name := hashForOID(indirect.MessageDigest.Algorithm.Algorithm)
	if hash == 0 {
		return fmt.Errorf("%w: unsupported image digest algorithm %v", ErrMalformed, indirect.MessageDigest.Algorithm.Algorithm)
	}
	if len(indirect.MessageDigest.Digest) != hash.Size() {
		return fmt.Errorf("%w: %s image digest of %d bytes", ErrMalformed, name, len(indirect.MessageDigest.Digest))
	}

	embedded := describeAll(p7.Certificates)
	verifyErr := p7.Verify()
	for _, signer := range p7.Signers {
		if len(p.signatures) == maxSignaturesPerFile {
			return fmt.Errorf("%w: more than %d signatures", ErrMalformed, maxSignaturesPerFile)
		}
		sig := &Signature{
			TableEntry:      tableEntry,
			NestingLevel:    level,
			Certificates:    embedded,
			DigestAlgorithm: name,
			ImageDigest:     hex.EncodeToString(indirect.MessageDigest.Digest),
			SignatureValid:  verifyErr == nil,
			hash:            hash,
		}
		if verifyErr != nil {
			sig.SignatureError = verifyErr.Error()
		}
		if cert := findCertificate(p7.Certificates, signer.IssuerAndSerialNumber.IssuerName.FullBytes, signer.IssuerAndSerialNumber.SerialNumber); cert != nil {
			info := certs.Describe(cert)
			sig.Signer = &info
		} else if sig.SignatureError == "" {
			sig.SignatureValid = false
			sig.SignatureError = "the signer's certificate is not in the signature"
		}
		p.signatures = append(p.signatures, sig)

		for _, attr := range signer.UnauthenticatedAttributes {
			switch {
			case attr.Type.Equal(oidRFC3161Timestamp):
				sig.Timestamp = parseRFC3161(attr.Value.Bytes, signer.EncryptedDigest)
			case attr.Type.Equal(oidCountersignature):
				sig.Timestamp = parseCountersignature(attr.Value.Bytes, signer.EncryptedDigest, p7.Certificates)
			}
			// Only a timestamp that stamps this very signature dates it; a
			// token copied from another signature would lend it its time.
			if sig.Timestamp != nil && sig.Timestamp.Valid && sig.SigningTime == nil && !sig.Timestamp.Time.IsZero() {
				t := sig.Timestamp.Time
				sig.SigningTime = &t
			}
		}
		for _, attr := range signer.UnauthenticatedAttributes {
			if !attr.Type.Equal(oidNestedSignature) {
				continue
			}
			// The attribute's SET holds one or more ContentInfo.
			for values := attr.Value.Bytes; len(values) > 0; {
				var nested asn1.RawValue
				values, err = asn1.Unmarshal(values, &nested)
				if err != nil {
					return fmt.Errorf("%w: nested signature: %v", ErrMalformed, err)
				}
				if err := p.parseSignedData(nested.FullBytes, tableEntry, level+1); err != nil {
					return fmt.Errorf("nested signature: %w", err)
				}
			}
		}
	}
	return nil
}

// parsePKCS7 bounds the input before the library sees it (see
// berElementLength) and turns any panic of the library on hostile input
// into an error, so that one bad file cannot stop a scan.
func parsePKCS7(der []byte) (p7 *pkcs7.PKCS7, err error) {
	n, err := berElementLength(der)
	if err != nil {
		return nil, fmt.Errorf("%w: PKCS#7: %v", ErrMalformed, err)
	}
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, fmt.Errorf("%w: PKCS#7 parser failed: %v", ErrMalformed, r)
		}
	}()
	p7, err = pkcs7.Parse(der[:n])
	if err != nil {
		return nil, fmt.Errorf("%w: PKCS#7: %v", ErrMalformed, err)
	}
	return p7, nil
}

// parseRFC3161 reads a timestamp token (a SignedData over a TSTInfo) and
// checks that it stamps this signature: the imprint must be the digest of
// the signer's encrypted digest.
func parseRFC3161(set []byte, encryptedDigest []byte) *Timestamp {
	ts := &Timestamp{Kind: "rfc3161"}
	var token asn1.RawValue
	if _, err := asn1.Unmarshal(set, &token); err != nil {
		ts.Error = "timestamp token: " + err.Error()
		return ts
	}
	p7, err := parsePKCS7(token.FullBytes)
	if err != nil {
		ts.Error = "timestamp token: " + err.Error()
		return ts
	}
	var info tstInfo
	if _, err := asn1.Unmarshal(p7.Content, &info); err != nil {
		ts.Error = "timestamp token: TSTInfo: " + err.Error()
		return ts
	}
	ts.Time = info.GenTime.UTC()
	ts.Certificates = describeAll(p7.Certificates)
	if cert := p7.GetOnlySigner(); cert != nil {
		signer := certs.Describe(cert)
		ts.Signer = &signer
	}
	hash, name := hashForOID(info.MessageImprint.Algorithm.Algorithm)
	ts.DigestAlgorithm = name
	switch {
	case hash == 0:
		ts.Error = "timestamp imprint uses an unsupported digest"
	case !hmac.Equal(sum(hash, encryptedDigest), info.MessageImprint.Digest):
		ts.Error = "the timestamp is for another signature"
	default:
		if err := p7.Verify(); err != nil {
			ts.Error = "timestamp signature: " + err.Error()
		} else {
			ts.Valid = true
		}
	}
	return ts
}

// parseCountersignature reads a legacy Authenticode countersignature: a bare
// SignerInfo whose certificates travel in the outer signature.
func parseCountersignature(set []byte, encryptedDigest []byte, pool []*x509.Certificate) *Timestamp {
	ts := &Timestamp{Kind: "countersignature"}
	var si signerInfo
	if _, err := asn1.Unmarshal(set, &si); err != nil {
		ts.Error = "countersignature: " + err.Error()
		return ts
	}
	hash, name := hashForOID(si.DigestAlgorithm.Algorithm)
	ts.DigestAlgorithm = name
	var messageDigest []byte
	for attrs := si.AuthenticatedAttributes.Bytes; len(attrs) > 0; {
		var attr attribute
		var err error
		if attrs, err = asn1.Unmarshal(attrs, &attr); err != nil {
			ts.Error = "countersignature attributes: " + err.Error()
			return ts
		}
		switch {
		case attr.Type.Equal(oidSigningTime):
			var t time.Time
			if _, err := asn1.Unmarshal(attr.Value.Bytes, &t); err == nil {
				ts.Time = t.UTC()
			}
		case attr.Type.Equal(oidMessageDigest):
			_, _ = asn1.Unmarshal(attr.Value.Bytes, &messageDigest)
		}
	}
	cert := findCertificate(pool, si.IssuerAndSerialNumber.IssuerName.FullBytes, si.IssuerAndSerialNumber.SerialNumber)
	if cert != nil {
		signer := certs.Describe(cert)
		ts.Signer = &signer
	}
	switch {
	case hash == 0:
		ts.Error = "countersignature uses an unsupported digest"
	case len(si.AuthenticatedAttributes.FullBytes) == 0 || messageDigest == nil:
		ts.Error = "countersignature has no message digest"
	case !hmac.Equal(sum(hash, encryptedDigest), messageDigest):
		ts.Error = "the countersignature is for another signature"
	case cert == nil:
		ts.Error = "the countersigner's certificate is not in the signature"
	default:
		// The signature covers the attributes encoded as a SET, not with
		// the [0] tag they carry inside the SignerInfo.
		signed := append([]byte{0x31}, si.AuthenticatedAttributes.FullBytes[1:]...)
		alg := signatureAlgorithm(cert, hash)
		if alg == x509.UnknownSignatureAlgorithm {
			ts.Error = "countersignature uses an unsupported signature algorithm"
		} else if err := cert.CheckSignature(alg, signed, si.EncryptedDigest); err != nil {
			ts.Error = "countersignature: " + err.Error()
		} else {
			ts.Valid = true
		}
	}
	return ts
}

// signatureAlgorithms names the algorithm of a signature by the signer's
// key and the digest it signs.
var signatureAlgorithms = map[x509.PublicKeyAlgorithm]map[crypto.Hash]x509.SignatureAlgorithm{
	x509.RSA: {
		crypto.MD5:    x509.MD5WithRSA,
		crypto.SHA1:   x509.SHA1WithRSA,
		crypto.SHA256: x509.SHA256WithRSA,
		crypto.SHA384: x509.SHA384WithRSA,
		crypto.SHA512: x509.SHA512WithRSA,
	},
	x509.ECDSA: {
		crypto.SHA1:   x509.ECDSAWithSHA1,
		crypto.SHA256: x509.ECDSAWithSHA256,
		crypto.SHA384: x509.ECDSAWithSHA384,
		crypto.SHA512: x509.ECDSAWithSHA512,
	},
}

func signatureAlgorithm(cert *x509.Certificate, hash crypto.Hash) x509.SignatureAlgorithm {
	// A missing entry is x509.UnknownSignatureAlgorithm, the zero value.
	return signatureAlgorithms[cert.PublicKeyAlgorithm][hash]
}

func findCertificate(pool []*x509.Certificate, issuer []byte, serial *big.Int) *x509.Certificate {
	if serial == nil {
		return nil
	}
	for _, cert := range pool {
		if cert.SerialNumber.Cmp(serial) == 0 && bytes.Equal(cert.RawIssuer, issuer) {
			return cert
		}
	}
	return nil
}

func describeAll(list []*x509.Certificate) []certs.Info {
	infos := make([]certs.Info, 0, len(list))
	for _, cert := range list {
		infos = append(infos, certs.Describe(cert))
	}
	return infos
}

func hashForOID(oid asn1.ObjectIdentifier) (crypto.Hash, string) {
	switch {
	case oid.Equal(oidDigestMD5):
		return crypto.MD5, "md5"
	case oid.Equal(oidDigestSHA1):
		return crypto.SHA1, "sha1"
	case oid.Equal(oidDigestSHA256):
		return crypto.SHA256, "sha256"
	case oid.Equal(oidDigestSHA384):
		return crypto.SHA384, "sha384"
	case oid.Equal(oidDigestSHA512):
		return crypto.SHA512, "sha512"
	}
	return 0, oid.String()
}

func sum(hash crypto.Hash, data []byte) []byte {
	h := hash.New()
	h.Write(data)
	return h.Sum(nil)
}
