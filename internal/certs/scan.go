package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// DefaultTimeout bounds a TLS scan when the caller gives none.
const DefaultTimeout = 10 * time.Second

// ScanTLS connects to addr (host:port), completes a TLS handshake and reports
// the chain the server presented. Nothing is trusted or rejected during the
// handshake: verification is done afterwards and reported in the Chain, so
// an intercepting proxy's or a self-signed chain is seen, not refused.
// serverName is sent as SNI and checked against the leaf; empty means the
// host part of addr (checked, and sent as SNI unless it is an IP address).
func ScanTLS(ctx context.Context, addr, serverName string, timeout time.Duration) (Chain, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return Chain{}, fmt.Errorf("scan %q: want HOST:PORT: %w", addr, err)
	}
	// SNI carries names only; the leaf is checked against the name asked
	// for, or else the address dialled (x509 checks IP SANs too).
	verifyName := serverName
	if serverName == "" {
		verifyName = host
		if net.ParseIP(host) == nil {
			serverName = host
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dialer := &net.Dialer{}
	raw, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Chain{}, fmt.Errorf("scan: connect: %w", err)
	}
	defer raw.Close()
	conn := tls.Client(raw, &tls.Config{
		ServerName: serverName,
		// The handshake must succeed whatever the chain is: the point is to
		// see it. The chain is verified separately, see Build.
		InsecureSkipVerify: true, //nolint:gosec // verification is reported, not enforced
		MinVersion:         tls.VersionTLS10,
	})
	if err := conn.HandshakeContext(ctx); err != nil {
		return Chain{}, fmt.Errorf("scan: TLS handshake: %w", err)
	}
	defer conn.Close()
	state := conn.ConnectionState()
	if len(state.PeerCertificates) == 0 {
		return Chain{}, errors.New("scan: the server presented no certificate")
	}
	return Build(state.PeerCertificates, Verification{DNSName: verifyName}), nil
}
