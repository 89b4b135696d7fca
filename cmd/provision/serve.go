package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/server"
)

func newServeCmd(e *env) *cobra.Command {
	var configFile, cpuProfile string
	var scaleOut storeFlags
	flagCfg := defaultServeConfig()
	cmd := &cobra.Command{
		Use:   "serve --data DIR",
		Short: "Receive submissions over HTTPS, validate them against the manifest and store them durably",
		Long: "Serve the ingest API (POST /v1/submit, /healthz, /readyz, /metrics).\n\n" +
			"TLS is on by default: give --tls-cert and --tls-key, or a self-signed certificate\n" +
			"is generated into DIR on first start and its SPKI SHA-256 pin printed for agents to pin.\n" +
			"Settings come from flags, PROVISION_* environment variables and a YAML file (--config),\n" +
			"flags first. The ingest limits (body and batch sizes, slots, memory budget, body rate,\n" +
			"per-client rates) are keys under limits: in the YAML file (README, Ingest).",
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
				"log-format":           func() { cfg.LogFormat = flagCfg.LogFormat },
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
			stop, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			return serve(cmd.Context(), e, &cfg, m, &scaleOut)
		},
	}
	scaleOut.registerStore(cmd, "ingest")
	scaleOut.registerLog(cmd)
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
	f.StringVar(&flagCfg.LogFormat, "log-format", flagCfg.LogFormat, "text or json (env PROVISION_LOG_FORMAT)")
	f.DurationVar(&flagCfg.ShutdownTimeout, "shutdown-timeout", flagCfg.ShutdownTimeout, "how long in-flight requests may take to finish on shutdown")
	registerCPUProfile(cmd, &cpuProfile)
	return cmd
}

// serve runs the server until ctx is done, then drains and stops. It
// listens before it writes anything, so a port in use leaves no store and
// no certificate behind.
func serve(ctx context.Context, e *env, cfg *serveConfig, m *manifest.Manifest, so *storeFlags) error {
	logger, err := newLogger(e.stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	tuneGC(e.getenv)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	store := so.store
	if store == "" {
		store = cfg.Data
	}
	b, err := backend.Open(ctx, so.options(store, true, logger))
	if err != nil {
		ln.Close()
		return err
	}
	defer b.Close()
	srv, err := server.New(server.Config{
		Listener: ln, Data: cfg.Data,
		TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey, InsecureHTTP: cfg.InsecureHTTP,
		TrustedProxyHeader: cfg.TrustedProxyHeader, GeoIP: cfg.GeoIP,
		ForwardConfig: cfg.ForwardConfig, Getenv: e.getenv,
		DashboardToken:  e.getenv("PROVISION_DASHBOARD_TOKEN"),
		Limits:          cfg.ingestLimits(),
		ShutdownTimeout: cfg.ShutdownTimeout,
		Logger:          logger,
	}, b, m)
	if err != nil {
		return err
	}
	if srv.GeneratedCert {
		fmt.Fprintf(e.stdout, "generated a self-signed certificate: %s\n", filepath.Join(cfg.Data, server.CertFile))
	}
	if srv.Pin != "" {
		fmt.Fprintf(e.stdout, "TLS SPKI SHA-256 pin: %s (base64 %s)\n", srv.Pin, srv.PinBase64)
	}
	fmt.Fprintf(e.stdout, "listening on %s\n", srv.URL)
	err = srv.Run(ctx)
	if cerr := b.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("server: %w", err)
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
