package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/provisionhq/provision/internal/selfsigned"
)

// Gateway stands for the edge of the simulated internet: a TLS-terminating
// reverse proxy on 127.0.0.1 in front of the server, as a load balancer
// would be. Agents upload to https://GATEWAY/via/ADDR; the gateway passes
// the request on to the server with ADDR in the trusted proxy header, which
// is how each installation's simulated address reaches the server although
// every connection comes from 127.0.0.1.
type Gateway struct {
	URL    string // https://127.0.0.1:PORT
	CAPEM  []byte // the gateway's self-signed certificate, for agents to trust
	srv    *http.Server
	ln     net.Listener
	served chan error
}

// StartGateway listens on a free 127.0.0.1 port and forwards to the server
// at upstream (https), trusting upstreamCA, setting header to each request's
// simulated address.
func StartGateway(upstream string, upstreamCA []byte, header string, log *slog.Logger) (*Gateway, error) {
	target, err := url.Parse(upstream)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("gateway upstream %q is not a URL", upstream)
	}
	var pool *x509.CertPool // nil: the system's roots
	if len(upstreamCA) > 0 {
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(upstreamCA) {
			return nil, errors.New("gateway: no PEM certificate for the upstream")
		}
	}
	certPEM, cert, err := SelfSignedCert()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	rp := &httputil.ReverseProxy{
		ErrorLog: errLog,
		Rewrite: func(r *httputil.ProxyRequest) {
			rest, _ := strings.CutPrefix(r.In.URL.Path, viaPath)
			addr, path, _ := strings.Cut(rest, "/")
			r.SetURL(target)
			r.Out.URL.Path = "/" + path
			r.Out.URL.RawPath = ""
			r.Out.Host = target.Host
			r.Out.Header.Del(header)
			if a, err := netip.ParseAddr(addr); err == nil {
				r.Out.Header.Set(header, a.String())
			}
		},
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 64,
			ForceAttemptHTTP2:   true,
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			// The server is down or restarting: a retryable answer, as a
			// real load balancer gives.
			log.Debug("gateway: upstream unavailable", "err", err)
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":{"code":"unavailable","message":"upstream unavailable"}}`, http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &Gateway{URL: "https://" + ln.Addr().String(), CAPEM: certPEM, ln: ln, served: make(chan error, 1)}
	g.srv = &http.Server{
		Handler:           rp,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errLog,
	}
	go func() { g.served <- g.srv.ServeTLS(ln, "", "") }()
	return g, nil
}

// Close stops the gateway.
func (g *Gateway) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := g.srv.Shutdown(ctx)
	<-g.served
	return err
}

// SelfSignedCert makes a short-lived certificate for 127.0.0.1 and returns
// it in PEM, for clients to trust, and as a TLS certificate.
func SelfSignedCert() ([]byte, tls.Certificate, error) {
	c, err := selfsigned.New("provision simulator", 7*24*time.Hour)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	return c.CertPEM, c.TLS, nil
}
