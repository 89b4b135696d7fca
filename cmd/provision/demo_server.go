package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/sim"
	"github.com/provisionhq/provision/internal/sqlite"
	"github.com/provisionhq/provision/internal/web"
)

// demoServer is the embedded server the demo runs in-process: the SQLite
// store, ingest with GeoIP behind a trusted proxy header, the rollup
// updater and the dashboard, over TLS with a self-signed certificate on a
// free 127.0.0.1 port.
type demoServer struct {
	URL     string // https://127.0.0.1:PORT
	CAPEM   []byte // its self-signed certificate
	Token   string // the dashboard's operator token
	Store   *sqlite.Store
	Rollups *sqlite.RollupStore

	srv     *http.Server
	served  chan error
	geo     *geo.DB
	stop    context.CancelFunc
	updater sync.WaitGroup
	once    sync.Once
}

type demoServerConfig struct {
	DataDir       string
	Listen        string // default 127.0.0.1:0
	GeoIP         string // .mmdb path
	AddressHeader string // trusted proxy header
	PublicRoots   *x509.CertPool
	Manifest      *manifest.Manifest
	Logger        *slog.Logger
}

func startDemoServer(ctx context.Context, c demoServerConfig) (*demoServer, error) {
	store, err := sqlite.Open(ctx, filepath.Join(c.DataDir, "provision.db"))
	if err != nil {
		return nil, err
	}
	s := &demoServer{Store: store, Rollups: sqlite.NewRollupStore(store.DB()), served: make(chan error, 1)}
	fail := func(err error) (*demoServer, error) {
		if s.geo != nil {
			s.geo.Close()
		}
		store.Close()
		return nil, err
	}
	if s.geo, err = geo.Open(c.GeoIP); err != nil {
		return fail(err)
	}
	in, err := ingest.NewServer(ingest.Deps{
		Log: store, Manifest: c.Manifest, Geo: s.geo,
		ClientAddr:  ingest.TrustedHeader(c.AddressHeader),
		Ready:       store.Ping,
		Checkpoints: store, Consumers: store.Consumers,
		Logger: c.Logger,
	})
	if err != nil {
		return fail(err)
	}
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return fail(err)
	}
	s.Token = hex.EncodeToString(token)
	dash, err := web.New(web.Config{Token: s.Token, Rollups: s.Rollups, PublicRoots: c.PublicRoots, Logger: c.Logger})
	if err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dashboard", dash)
	mux.Handle("/dashboard/", dash)
	mux.Handle("/v1/reports/", dash)
	mux.Handle("/", in)

	certPEM, cert, err := demoCertificate(c.DataDir)
	if err != nil {
		return fail(err)
	}
	s.CAPEM = certPEM
	listen := c.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fail(err)
	}
	s.URL = "https://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(c.Logger.Handler(), slog.LevelDebug),
	}
	go func() { s.served <- s.srv.ServeTLS(ln, "", "") }()

	// The rollups follow the log while the demo runs, so the dashboard
	// shows the fleet as it arrives; not more often, since each apply
	// holds SQLite's one write lock that ingest needs too.
	uctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	u := &rollup.Updater{Log: store, Store: s.Rollups, Logger: c.Logger}
	s.updater.Go(func() {
		for {
			if _, err := u.Update(uctx); err != nil && uctx.Err() == nil {
				c.Logger.Warn("rollup update failed", "err", err)
			}
			select {
			case <-uctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
	})
	return s, nil
}

// UpdateRollups brings the rollups up to the log's head now.
func (s *demoServer) UpdateRollups(ctx context.Context) error {
	u := &rollup.Updater{Log: s.Store, Store: s.Rollups}
	_, err := u.Update(ctx)
	return err
}

// Close shuts the server down; it is safe to call twice.
func (s *demoServer) Close() error {
	var errs []error
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := <-s.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serving: %w", err))
		}
		s.stop()
		s.updater.Wait()
		errs = append(errs, s.geo.Close(), s.Store.Close())
	})
	return errors.Join(errs...)
}

// demoCertificate loads the server certificate kept in dataDir, or makes a
// self-signed one and keeps it there, so that a restarted server presents
// the certificate its clients already trust.
func demoCertificate(dataDir string) ([]byte, tls.Certificate, error) {
	certFile, keyFile := filepath.Join(dataDir, "server.crt"), filepath.Join(dataDir, "server.key")
	if certPEM, err := os.ReadFile(certFile); err == nil {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		return certPEM, cert, err
	}
	certPEM, cert, err := sim.SelfSignedCert()
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	// The key first, so that a certificate file never exists without it.
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, tls.Certificate{}, err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return nil, tls.Certificate{}, err
	}
	return certPEM, cert, nil
}
