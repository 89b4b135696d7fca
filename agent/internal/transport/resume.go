package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// A full handshake runs X25519MLKEM768 (Go's first preference), whose key
// shares are 2.3 KB of the ~5 KB an upload costs. A resumed handshake
// authenticates with the pre-shared key of an earlier full handshake, so
// its secrets already rest on that post-quantum exchange; it adds a fresh
// X25519 exchange for forward secrecy, which keeps a day's upload near
// 3 KB. A resumption the server declines would become a full handshake on
// X25519 alone: the client aborts it before sending anything and makes a
// full handshake with the default (post-quantum first) groups instead.

// errNotResumed aborts a handshake that offered only the resumption
// groups but did not resume.
var errNotResumed = errors.New("tls: the server declined the session; retrying with a full handshake")

// resumeGroups are the key-exchange groups offered with a session ticket.
var resumeGroups = []tls.CurveID{tls.X25519}

type tlsDialer struct {
	fresh    *tls.Config // the default groups; keeps the tickets it gets
	resume   *tls.Config // fresh's settings with resumeGroups
	sessions tls.ClientSessionCache
	dialer   net.Dialer
	timeout  time.Duration
}

func newTLSDialer(fresh *tls.Config, timeout time.Duration) *tlsDialer {
	d := &tlsDialer{fresh: fresh, sessions: fresh.ClientSessionCache, timeout: timeout, dialer: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}}
	d.resume = fresh.Clone()
	d.resume.CurvePreferences = resumeGroups
	verify := fresh.VerifyConnection
	d.resume.VerifyConnection = func(cs tls.ConnectionState) error {
		if !cs.DidResume {
			return errNotResumed
		}
		if verify != nil {
			return verify(cs)
		}
		return nil
	}
	return d
}

// DialTLSContext connects to addr, resuming the kept session when there is
// one.
func (d *tlsDialer) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if d.sessions != nil {
		// The session cache is keyed by server name, which is host here.
		if _, ok := d.sessions.Get(host); ok {
			c, err := d.handshake(ctx, network, addr, host, d.resume)
			if !errors.Is(err, errNotResumed) {
				return c, err
			}
			d.sessions.Put(host, nil)
		}
	}
	return d.handshake(ctx, network, addr, host, d.fresh)
}

func (d *tlsDialer) handshake(ctx context.Context, network, addr, host string, base *tls.Config) (net.Conn, error) {
	raw, err := d.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := base.Clone()
	cfg.ServerName = host
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c := tls.Client(raw, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}
