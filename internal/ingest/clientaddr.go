package ingest

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr finds the address a request came from. The address is used for
// the location lookup and then dropped; it must not be logged or kept.
type ClientAddr func(r *http.Request) (netip.Addr, bool)

// RemoteAddr takes the peer address of the connection: right when clients
// connect directly, as they do over the server's own TLS.
func RemoteAddr(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// TrustedHeader takes the address from a header that a TLS terminator in
// front of the server sets, such as X-Forwarded-For or X-Real-IP. When the
// header lists several addresses, the last one is taken: it is the one the
// trusted proxy appended, the others come from the client and can be
// forged. Without the header, the address is unknown (never the proxy's).
func TrustedHeader(name string) ClientAddr {
	return func(r *http.Request) (netip.Addr, bool) {
		values := r.Header.Values(name)
		if len(values) == 0 {
			return netip.Addr{}, false
		}
		v := values[len(values)-1]
		if i := strings.LastIndexByte(v, ','); i >= 0 {
			v = v[i+1:]
		}
		v = strings.TrimSpace(v)
		if ap, err := netip.ParseAddrPort(v); err == nil {
			return ap.Addr().Unmap(), true
		}
		a, err := netip.ParseAddr(strings.Trim(v, "[]"))
		if err != nil {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
}
