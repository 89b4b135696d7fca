package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/certs/authenticode"
)

// TLSObservation is what the agent recorded of one presented chain.
type TLSObservation struct {
	Subject      string `json:"subject"`
	Issuer       string `json:"issuer"`
	SPKISHA256   string `json:"spki_sha256"`
	Certificates int    `json:"certificates"`
	Trusted      bool   `json:"trusted"` // set by ScanTLS only; RecordTLS does not verify
	TrustError   string `json:"trust_error,omitempty"`
}

// RecordTLS counts the certificate chain a connection presented, for a
// host application that proxies TLS and holds the connection state.
func (a *Agent) RecordTLS(ctx context.Context, state tls.ConnectionState) (TLSObservation, error) {
	if len(state.PeerCertificates) == 0 {
		return TLSObservation{}, errors.New("agent: the connection presented no certificate")
	}
	return a.recordChain(ctx, describe(state.PeerCertificates))
}

// describe reports a chain without verifying it: a proxy records every
// connection, and whether the chain is trusted is not a data item, so the
// cost of path building is not paid on that path.
func describe(list []*x509.Certificate) certs.Chain {
	chain := certs.Chain{Certificates: make([]certs.Info, len(list))}
	for i, c := range list {
		chain.Certificates[i] = certs.Describe(c)
	}
	return chain
}

// RecordTLSChain counts a presented chain given as DER certificates, leaf
// first.
func (a *Agent) RecordTLSChain(ctx context.Context, der [][]byte) (TLSObservation, error) {
	parsed, err := certs.ParseDER(der)
	if err != nil {
		return TLSObservation{}, fmt.Errorf("agent: %w", err)
	}
	return a.recordChain(ctx, describe(parsed))
}

// ScanTLS connects to addr (host:port), reads the chain the server presents
// and counts it. Nothing is sent to the server beyond the handshake.
func (a *Agent) ScanTLS(ctx context.Context, addr, serverName string, timeout time.Duration) (TLSObservation, error) {
	if _, err := a.consented(); err != nil {
		return TLSObservation{}, err
	}
	chain, err := certs.ScanTLS(ctx, addr, serverName, timeout)
	if err != nil {
		return TLSObservation{}, fmt.Errorf("agent: %w", err)
	}
	return a.recordChain(ctx, chain)
}

func (a *Agent) recordChain(ctx context.Context, chain certs.Chain) (TLSObservation, error) {
	if len(chain.Certificates) == 0 {
		return TLSObservation{}, errors.New("agent: no certificate in the chain")
	}
	// The terms name "the certificate used to establish the connection and
	// the checksum (SHA2-256) of its public key": the leaf, not the rest of
	// the chain, which stays on the device.
	leaf := chain.Certificates[0]
	fields := map[string]any{"tls.certificate": leaf.DER, "tls.spki_sha256": leaf.SPKISHA256}
	obs := TLSObservation{Subject: leaf.Subject, Issuer: leaf.Issuer, SPKISHA256: leaf.SPKISHA256,
		Certificates: len(chain.Certificates), Trusted: chain.Trusted, TrustError: chain.TrustError}
	return obs, a.record(ctx, "tls_connection", fields)
}

// FileReport says what a file scan found and recorded.
type FileReport struct {
	Files      int          `json:"files"`    // regular files looked at
	Signed     int          `json:"signed"`   // of which carry an Authenticode signature
	Recorded   int          `json:"recorded"` // signatures recorded
	NotPE      int          `json:"not_pe"`   // files that are not PE images
	Failed     []FileFailed `json:"failed,omitempty"`
	Signatures []FileSigner `json:"signatures,omitempty"`
}

// FileFailed is a file that could not be read or parsed.
type FileFailed struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// FileSigner is one signer found in a file.
type FileSigner struct {
	Path        string `json:"path"`
	Subject     string `json:"subject"`
	SPKISHA256  string `json:"spki_sha256"`
	DigestValid bool   `json:"digest_valid"`
}

// ScanFile reads the Authenticode signatures of the file, or of every file
// under the directory, and counts each signer certificate.
func (a *Agent) ScanFile(ctx context.Context, path string) (FileReport, error) {
	var rep FileReport
	if _, err := a.consented(); err != nil {
		return rep, err
	}
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == path {
				return err
			}
			rep.Failed = append(rep.Failed, FileFailed{p, err.Error()})
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rep.Files++
		res, err := authenticode.ScanFile(p)
		switch {
		case errors.Is(err, authenticode.ErrNotPE):
			rep.NotPE++
			return nil
		case err != nil:
			rep.Failed = append(rep.Failed, FileFailed{p, err.Error()})
			return nil
		case !res.Signed:
			return nil
		}
		rep.Signed++
		for _, sig := range res.Signatures {
			if sig.Signer == nil {
				continue
			}
			// The terms name the certificate, its public key and "the
			// thumbprint" (the SHA-1 one Windows shows); whether the file
			// matched its signature is reported locally only.
			fields := map[string]any{
				"file.certificate":     sig.Signer.DER,
				"file.spki_sha256":     sig.Signer.SPKISHA256,
				"file.thumbprint_sha1": sig.Signer.ThumbprintSHA1,
			}
			if err := a.record(ctx, "file_signature", fields); err != nil {
				return err
			}
			rep.Recorded++
			rep.Signatures = append(rep.Signatures, FileSigner{p, sig.Signer.Subject, sig.Signer.SPKISHA256, sig.DigestValid})
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("agent: %w", err)
	}
	return rep, nil
}
