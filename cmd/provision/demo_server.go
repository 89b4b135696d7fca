package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/server"
)

// demoServer is the server the demo runs in-process: internal/server on
// the embedded store, with GeoIP behind a trusted proxy header (the
// simulated gateway's), the dashboard, and a self-signed certificate on a
// free 127.0.0.1 port.
type demoServer struct {
	*server.Server
	Backend *backend.Backend
	Token   string // the dashboard's operator token
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

// demoRollupInterval keeps the dashboard close to the fleet as it
// arrives; not more often, since each apply holds SQLite's one write lock
// that ingest needs too.
const demoRollupInterval = 5 * time.Second

func startDemoServer(ctx context.Context, c demoServerConfig) (*demoServer, error) {
	listen := c.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return nil, err
	}
	b, err := backend.Open(ctx, backend.Options{Store: c.DataDir, Create: true, Logger: c.Logger})
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Config{
		Listen: listen, Data: c.DataDir, GeoIP: c.GeoIP,
		TrustedProxyHeader: c.AddressHeader,
		DashboardToken:     hex.EncodeToString(token),
		PublicRoots:        c.PublicRoots,
		RollupInterval:     demoRollupInterval,
		ColdDashboard:      true,
		ShutdownTimeout:    10 * time.Second,
		Logger:             c.Logger,
	}, b, c.Manifest)
	if err != nil {
		return nil, errors.Join(err, b.Close())
	}
	srv.Start(ctx)
	return &demoServer{Server: srv, Backend: b, Token: hex.EncodeToString(token)}, nil
}

// UpdateRollups brings the rollups up to the log's head now.
func (s *demoServer) UpdateRollups(ctx context.Context) error {
	_, err := s.Backend.Updater(nil).Update(ctx)
	return err
}

// Close shuts the server down and closes the store; it is safe to call
// twice.
func (s *demoServer) Close() error {
	return errors.Join(s.Shutdown(), s.Backend.Close())
}
