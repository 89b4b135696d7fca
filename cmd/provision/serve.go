package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/manifest"
)

func newServeCmd(e *env) *cobra.Command {
	var configFile string
	var scaleOut scaleOutFlags
	flagCfg := defaultServeConfig()
	cmd := &cobra.Command{
		Use:   "serve --data DIR",
		Short: "Receive submissions over HTTPS, validate them against the manifest and store them durably",
		Long: "Serve the ingest API (POST /v1/submit, /healthz, /readyz, /metrics).\n\n" +
			"TLS is on by default: give --tls-cert and --tls-key, or a self-signed certificate\n" +
			"is generated into DIR on first start and its SPKI SHA-256 pin printed for agents to pin.\n" +
			"Settings come from flags, PROVISION_* environment variables and a YAML file (--config),\n" +
			"flags first.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := defaultServeConfig()
			if configFile == "" {
				configFile = e.getenv("PROVISION_CONFIG")
			}
			if configFile != "" {
				if err := cfg.loadYAML(configFile); err != nil {
					return err
				}
			}
			if err := cfg.loadEnv(e.getenv); err != nil {
				return err
			}
			// Flags the user gave win over everything.
			flags := cmd.Flags()
			override := map[string]func(){
				"data":                 func() { cfg.Data = flagCfg.Data },
				"listen":               func() { cfg.Listen = flagCfg.Listen },
				"tls-cert":             func() { cfg.TLSCert = flagCfg.TLSCert },
				"tls-key":              func() { cfg.TLSKey = flagCfg.TLSKey },
				"insecure-http":        func() { cfg.InsecureHTTP = flagCfg.InsecureHTTP },
				"trusted-proxy-header": func() { cfg.TrustedProxyHeader = flagCfg.TrustedProxyHeader },
				"geoip":                func() { cfg.GeoIP = flagCfg.GeoIP },
				"forward-config":       func() { cfg.ForwardConfig = flagCfg.ForwardConfig },
				"log-level":            func() { cfg.LogLevel = flagCfg.LogLevel },
				"shutdown-timeout":     func() { cfg.ShutdownTimeout = flagCfg.ShutdownTimeout },
			}
			for name, apply := range override {
				if flags.Changed(name) {
					apply()
				}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			m, err := loadManifest(cmd)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), e, &cfg, m, &scaleOut)
		},
	}
	scaleOut.register(cmd, "ingest")
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML configuration `FILE` (env PROVISION_CONFIG)")
	f.StringVar(&flagCfg.Data, "data", "", "data `DIR` for the store and the generated certificate (env PROVISION_DATA)")
	f.StringVar(&flagCfg.Listen, "listen", flagCfg.Listen, "`ADDR` to listen on, host:port (env PROVISION_LISTEN)")
	f.StringVar(&flagCfg.TLSCert, "tls-cert", "", "certificate `FILE` (PEM) instead of the generated one (env PROVISION_TLS_CERT)")
	f.StringVar(&flagCfg.TLSKey, "tls-key", "", "private key `FILE` (PEM) of --tls-cert (env PROVISION_TLS_KEY)")
	f.BoolVar(&flagCfg.InsecureHTTP, "insecure-http", false, "serve plain HTTP, only behind a TLS terminator (env PROVISION_INSECURE_HTTP)")
	f.StringVar(&flagCfg.TrustedProxyHeader, "trusted-proxy-header", "", "with --insecure-http, the `HEADER` the terminator puts the client address in, e.g. X-Forwarded-For")
	f.StringVar(&flagCfg.ForwardConfig, "forward-config", "", "forwarders' YAML `FILE` (docs/forwarding.md); without it nothing is forwarded (env PROVISION_FORWARD_CONFIG)")
	f.StringVar(&flagCfg.GeoIP, "geoip", "", "MaxMind DB `FILE` (.mmdb) to derive country and subdivision; without it location is unknown")
	f.StringVar(&flagCfg.LogLevel, "log-level", flagCfg.LogLevel, "debug, info, warn or error (env PROVISION_LOG_LEVEL)")
	f.DurationVar(&flagCfg.ShutdownTimeout, "shutdown-timeout", flagCfg.ShutdownTimeout, "how long in-flight requests may take to finish on shutdown")
	return cmd
}

// serve runs the server until ctx is done, then drains and stops.
func serve(ctx context.Context, e *env, cfg *serveConfig, m *manifest.Manifest, so *scaleOutFlags) error {
	logger := newLogger(e, cfg.LogLevel)
	tuneGC(e.getenv)
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	backend, err := openServeBackend(ctx, cfg.Data, so, logger)
	if err != nil {
		return err
	}
	defer backend.close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	deletion, jobs, err := startServeExtras(ctx, e, cfg, backend, m, logger, reg, mux)
	if err != nil {
		return err
	}
	defer jobs.Stop()
	var geoDB *geo.DB
	if cfg.GeoIP != "" {
		if geoDB, err = geo.Open(cfg.GeoIP, geo.WithLogger(logger), geo.WithMetrics(reg)); err != nil {
			return fmt.Errorf("geoip: %w", err)
		}
		defer geoDB.Close()
	}

	deps := ingest.Deps{
		Log:         backend.log,
		Manifest:    m,
		Limits:      cfg.ingestLimits(),
		Geo:         geoDB,
		Ready:       backend.ready,
		Checkpoints: backend.checkpoints,
		Consumers:   backend.consumers,
		Deletion:    deletion,
		Logger:      logger,
		Registry:    reg,
	}
	if cfg.InsecureHTTP {
		deps.ClientAddr = ingest.TrustedHeader(cfg.TrustedProxyHeader)
	}
	handler, err := ingest.NewServer(deps)
	if err != nil {
		return err
	}
	mux.Handle("/", handler)

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// net/http's own messages name the peer address ("TLS handshake
		// error from 192.0.2.1:…"): they go nowhere.
		ErrorLog:    log.New(discardWriter{}, "", 0),
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	scheme := "http"
	if !cfg.InsecureHTTP {
		cert, generated, err := serverCertificate(cfg)
		if err != nil {
			return err
		}
		hexPin, b64Pin, err := spkiPin(cert)
		if err != nil {
			return err
		}
		if generated {
			fmt.Fprintf(e.stdout, "generated a self-signed certificate: %s\n", filepath.Join(cfg.Data, "server.crt"))
		}
		fmt.Fprintf(e.stdout, "TLS SPKI SHA-256 pin: %s (base64 %s)\n", hexPin, b64Pin)
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		scheme = "https"
	}

	// Listen first, so a bad address or a port in use fails at once.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(e.stdout, "listening on %s://%s\n", scheme, ln.Addr())
	logger.Info("serving", "addr", ln.Addr().String(), "tls", !cfg.InsecureHTTP, "geoip", cfg.GeoIP != "")

	served := make(chan error, 1)
	go func() {
		if cfg.InsecureHTTP {
			served <- srv.Serve(ln)
		} else {
			served <- srv.ServeTLS(ln, "", "")
		}
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining in-flight requests")
	handler.Drain()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && serr != nil {
		err = errors.Join(err, serr)
	}
	jobs.Stop()
	if cerr := backend.close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(e.stdout, "stopped")
	return nil
}

// tuneGC trades memory for CPU unless the operator set GOGC or GOMEMLIMIT:
// ingest allocates per event, so collecting less often pays, and the soft
// limit keeps the heap well inside what the admission budget promises.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(400 << 20)
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func newLogger(e *env, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: l}))
}
