// Package server is the one composition of the Provision server: the route
// table, the background jobs and the lifecycle. `provision serve`, the
// demo and the tests all build it with New and differ only in their
// Config.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/web"
	"github.com/provisionhq/provision/internal/wire"
)

// Defaults of the zero Config values.
const (
	DefaultRollupInterval  = time.Minute
	DefaultShutdownTimeout = 30 * time.Second
)

// Config is what differs between deployments of the server.
type Config struct {
	// Listen is the host:port to listen on, unless Listener is given.
	Listen string
	// Listener, when set, is used instead of Listen. A command opens it
	// before it touches the disk, so a port in use fails before a store or
	// a certificate is created. The server closes it.
	Listener net.Listener

	// Data is the directory of the generated certificate and of the
	// operator token's hash (privacy.TokenFile).
	Data string
	// TLSCert and TLSKey are PEM files; without them a self-signed
	// certificate is generated into Data on first start.
	TLSCert, TLSKey string
	// InsecureHTTP serves plain HTTP, only behind a TLS terminator.
	InsecureHTTP bool
	// TrustedProxyHeader, when set, is the header the client address is
	// taken from (a terminator's, or the demo's simulated gateway).
	TrustedProxyHeader string
	// GeoIP is a MaxMind DB file; empty leaves every location unknown.
	GeoIP string

	// ForwardConfig is the forwarders' YAML file; empty forwards nothing.
	ForwardConfig string
	// Getenv reads the forwarders' secrets; nil means os.Getenv.
	Getenv func(string) string

	// DashboardToken, when set, serves the dashboard and the report API
	// with sessions signed by it.
	DashboardToken string
	// PublicRoots are the roots the threat report counts as public; nil
	// means the system's.
	PublicRoots *x509.CertPool

	Limits ingest.Limits // zero: ingest.DefaultLimits
	// RollupInterval is how often the server folds the log into the
	// rollups where no worker does; 0 means DefaultRollupInterval.
	RollupInterval time.Duration
	// ColdDashboard leaves the dashboard's views to be built on first
	// view instead of after every rollup update: the demo updates every few
	// seconds while its fleet arrives and nobody looks yet.
	ColdDashboard bool
	// NoticeRetry is how deletion notices to recipients are retried by
	// the notices job; zero Initial and Max mean privacy.DefaultNoticePolicy.
	NoticeRetry wire.Policy
	// NoticeInterval is how often the notices job looks for notices due;
	// 0 means 5 s. An erasure that queues notices wakes it at once.
	NoticeInterval time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests; 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// Now is ingest's clock: receipt times, the accepted time window and
	// the correction of devices' clock skew are read from it. Nil means
	// the wall clock, as `provision serve` runs; a simulation that replays
	// past days gives the clock its fleet uploads by, so that a replayed
	// batch is not taken for one from a device whose clock is wrong.
	Now func() time.Time

	Logger   *slog.Logger         // nil discards
	Registry *prometheus.Registry // nil: a new one with the Go and process collectors
}

// Server is a configured server, ready to Run.
type Server struct {
	cfg     Config
	backend *backend.Backend
	logger  *slog.Logger

	ln       net.Listener
	srv      *http.Server
	ingest   *ingest.Server
	routes   routes
	geo      *geo.DB
	jobs     []job
	forwards forward.Group
	refresh  *rollup.Refresher // recomputes the days erasures touched

	// URL is scheme://host:port of the listener.
	URL string
	// CertPEM is the served certificate (nil with InsecureHTTP), and
	// GeneratedCert tells whether New generated it into Data.
	CertPEM       []byte
	GeneratedCert bool
	// Pin is the certificate's SPKI SHA-256 in hex and in base64, for
	// agents to pin.
	Pin, PinBase64 string

	runOnce  sync.Once
	startMu  sync.Mutex
	cancel   context.CancelFunc
	done     chan struct{}
	runErr   error
	shutOnce sync.Once
}

// New builds the server on b: it listens (or takes cfg.Listener), loads or
// generates the certificate, builds every handler and the background jobs.
// The backend stays the caller's to close, after Run returns.
func New(cfg Config, b *backend.Backend, m *manifest.Manifest) (s *Server, err error) {
	if b == nil || m == nil {
		return nil, errors.New("server: a backend and a manifest are required")
	}
	if cfg.RollupInterval <= 0 {
		cfg.RollupInterval = DefaultRollupInterval
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s = &Server{cfg: cfg, backend: b, logger: cfg.Logger, done: make(chan struct{})}

	// Listen first, so a bad address or a port in use fails before
	// anything is written.
	s.ln = cfg.Listener
	if s.ln == nil {
		if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
	}
	// A failure returns a nil s: the deferred cleanup keeps its own.
	built := s
	defer func() {
		if err != nil {
			built.ln.Close()
			if built.geo != nil {
				built.geo.Close()
			}
		}
	}()

	var tlsConfig *tls.Config
	scheme := "http"
	if !cfg.InsecureHTTP {
		cert, certPEM, generated, err := certificate(&cfg)
		if err != nil {
			return nil, err
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		s.CertPEM, s.GeneratedCert = certPEM, generated
		s.Pin, s.PinBase64 = certs.SPKISHA256Hex(leaf), certs.SPKISHA256Base64(leaf)
		tlsConfig = wire.TLSConfig()
		tlsConfig.Certificates = []tls.Certificate{cert}
		scheme = "https"
	}
	s.URL = scheme + "://" + s.ln.Addr().String()

	if cfg.GeoIP != "" {
		if s.geo, err = geo.Open(cfg.GeoIP, geo.WithLogger(s.logger), geo.WithMetrics(cfg.Registry)); err != nil {
			return nil, fmt.Errorf("geoip: %w", err)
		}
	}
	s.refresh = b.Refresher(cfg.Logger)
	// The forwarding file is read once: its recipients are told of
	// erasures and, further down, fed by the forwarders.
	var fc *forward.Config
	if cfg.ForwardConfig != "" {
		if fc, err = forward.LoadConfig(cfg.ForwardConfig); err != nil {
			return nil, err
		}
	}
	recipients, err := recipientOwners(fc, cfg.Getenv)
	if err != nil {
		return nil, err
	}
	svc, owners, err := b.PrivacyService(m, cfg.Logger, s.refresh, recipients...)
	if err != nil {
		return nil, err
	}
	deps := ingest.Deps{
		Log:         b.Log,
		Manifest:    m,
		Limits:      cfg.Limits,
		Geo:         s.geo,
		Ready:       b.Ready,
		Checkpoints: b.Checkpoints,
		Consumers:   b.Consumers,
		Deletion:    privacy.NewDeletionHandler(svc),
		Logger:      cfg.Logger,
		Registry:    cfg.Registry,
		Now:         cfg.Now,
	}
	deps.ClientAddr = ingest.RemoteAddr
	if cfg.TrustedProxyHeader != "" {
		deps.ClientAddr = ingest.TrustedHeader(cfg.TrustedProxyHeader)
	}
	if s.ingest, err = ingest.NewServer(deps); err != nil {
		return nil, err
	}
	rt := routes{ingest: s.ingest}
	// Operator endpoints exist only once an operator token was made with
	// `provision privacy token`; its hash is all the server keeps.
	if cfg.Data != "" {
		if hash, err := privacy.LoadTokenHash(cfg.Data); err == nil {
			rt.admin = privacy.NewAdminHandler(svc, hash, deps.ClientAddr)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("operator token: %w", err)
		}
	}
	// The dashboard signs its sessions with the operator's token, so it
	// is served only when the operator hands one over.
	var dash *web.Dashboard
	if cfg.DashboardToken != "" {
		if dash, err = web.New(web.Config{Token: cfg.DashboardToken, Rollups: b.Rollups, PublicRoots: cfg.PublicRoots, Logger: cfg.Logger,
			ClientAddr: deps.ClientAddr}); err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		rt.dashboard = dash
	}
	if fc != nil {
		if s.forwards, err = newForwarders(&cfg, fc, b, m, svc); err != nil {
			return nil, err
		}
		rt.forward = forwardStatusHandler(s.forwards)
	}
	s.jobs = s.backgroundJobs(m, svc, owners, dash)

	s.routes = rt
	s.srv = &http.Server{
		Handler:           rt.mux(),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// net/http's own messages name the peer address ("TLS handshake
		// error from 192.0.2.1:…"): they go nowhere.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves and runs the background jobs until ctx ends or one of them
// fails; then it drains ingest, waits up to ShutdownTimeout for in-flight
// requests, stops the jobs and returns every error met. Run may be called
// once.
func (s *Server) Run(ctx context.Context) error {
	err := errors.New("server: Run called twice")
	s.runOnce.Do(func() { err = s.run(ctx) })
	return err
}

func (s *Server) run(ctx context.Context) error {
	defer func() {
		if s.geo != nil {
			s.geo.Close()
		}
	}()
	s.srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	// Read before Serve starts: serving plain HTTP fills TLSConfig in for
	// HTTP/2.
	overTLS := s.srv.TLSConfig != nil
	g, gctx := newGroup(ctx, s.logger)
	// The jobs outlive the requests: they stop once the server drained.
	jctx, stopJobs := context.WithCancel(context.WithoutCancel(gctx))
	defer stopJobs()
	g.Go("http", func() error {
		var err error
		if overTLS {
			err = s.srv.ServeTLS(s.ln, "", "")
		} else {
			err = s.srv.Serve(s.ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	g.Go("shutdown", func() error {
		<-gctx.Done()
		defer stopJobs()
		s.logger.Info("shutting down: draining in-flight requests")
		s.ingest.Drain()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), s.cfg.ShutdownTimeout)
		defer cancel()
		return s.srv.Shutdown(sctx)
	})
	for _, j := range s.jobs {
		g.Go(j.name, func() error { return j.run(jctx) })
	}
	s.logger.Info("serving", "addr", s.ln.Addr().String(), "tls", overTLS,
		"geoip", s.geo != nil, "backend", s.backend.Describe())
	return g.Wait()
}

// Start runs the server in the background until Shutdown.
func (s *Server) Start(ctx context.Context) {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		s.runErr = s.Run(ctx)
	}()
}

// Done is closed when a server begun with Start has stopped, on Shutdown
// or because a job failed; Shutdown then returns the error.
func (s *Server) Done() <-chan struct{} { return s.done }

// Shutdown stops a server begun with Start and returns Run's error. It is
// safe to call more than once, and before Start (it then only releases
// the listener).
func (s *Server) Shutdown() error {
	s.startMu.Lock()
	cancel := s.cancel
	s.startMu.Unlock()
	if cancel == nil {
		s.shutOnce.Do(func() {
			s.runOnce.Do(func() {})
			s.ln.Close()
			if s.geo != nil {
				s.geo.Close()
			}
		})
		return nil
	}
	cancel()
	<-s.done
	return s.runErr
}
