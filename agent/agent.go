// Package agent is the client side of Provision that a host application
// imports. It collects only the data items the manifest declares, only after
// the user has accepted the data-provision terms for a region, keeps every
// observation in a durable on-disk outbox, uploads it over HTTPS, and keeps
// a local record of everything that left the machine.
//
// A host application opens an Agent on a state directory, records what it
// observes (errors, installation tasks, TLS certificates seen by its proxy,
// signed files it scanned), and runs the background uploader:
//
//	a, err := agent.Open(agent.Config{StateDir: dir, Software: agent.Software{...}})
//	...
//	defer a.Close()
//	if _, err := a.Accept("eu"); err != nil { ... } // when the user accepts the terms
//	go a.Run(ctx, agent.Upload{Server: "https://telemetry.example.com"})
//	a.RecordError(ctx, agent.UIError{Type: "connection_failed", Code: "E42"})
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/provisionhq/provision/agent/internal/outbox"
	"github.com/provisionhq/provision/agent/internal/transport"
	"github.com/provisionhq/provision/internal/manifest"
)

// Errors that callers test with errors.Is.
var (
	// ErrNoConsent means the user has not accepted the terms (or withdrew):
	// nothing is collected, queued or sent.
	ErrNoConsent = errors.New("agent: the data-provision terms have not been accepted")
	// ErrClosed means the agent was closed.
	ErrClosed = errors.New("agent: closed")
	// ErrStateDirBusy means another agent holds the state directory: one
	// process at a time may open it, and Open gave up waiting for it.
	ErrStateDirBusy = errors.New("agent: the state directory is in use by another agent")
)

// Limits bound the outbox; zero fields take the defaults (10 000 events,
// 8 MiB, 30 days; a sent log of 200 batches or 4 MiB).
type Limits struct {
	MaxEvents   int
	MaxBytes    int64
	MaxAge      time.Duration
	SentEntries int
	SentBytes   int64
}

// Config configures an Agent.
type Config struct {
	// StateDir holds the installation id, consent, outbox and sent log.
	// Required; created with owner-only permissions.
	StateDir string
	// ManifestFile is a data manifest to use instead of the embedded
	// reference manifest.
	ManifestFile string
	// Software describes the host application.
	Software Software
	// LicenseProviderSite is the website of the shop that sold the licence;
	// it is reduced to its scheme and host before it is kept.
	LicenseProviderSite string
	// Limits bound the outbox.
	Limits Limits
	// AggregationPeriod is how long repeats of one observation are counted
	// into one event; default 24 h.
	AggregationPeriod time.Duration
	// Logger receives operational messages; nil discards them. No
	// installation id, address or certificate is ever logged.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ReadOS reads the operating system; nil means the real reader.
	ReadOS func(context.Context) (OSInfo, error)
}

// Agent is an open state directory. It is safe for concurrent use.
type Agent struct {
	cfg    Config
	m      *manifest.Manifest
	store  *outbox.Store
	log    *slog.Logger
	now    func() time.Time
	period time.Duration

	mu       sync.Mutex
	software Software
	license  string
	osInfo   *OSInfo // read once, on first use
	closed   bool

	clientMu  sync.Mutex
	client    *transport.Client // kept between flushes; see transport
	clientKey clientKey
}

// Open opens the state directory, creating it if needed. Opening collects
// nothing.
func Open(cfg Config) (*Agent, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("agent: StateDir is required")
	}
	m := manifest.Reference()
	if cfg.ManifestFile != "" {
		var err error
		if m, err = manifest.Load(cfg.ManifestFile); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: state directory: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	period := cfg.AggregationPeriod
	if period <= 0 {
		period = 24 * time.Hour
	}
	a := &Agent{cfg: cfg, m: m, log: log, now: now, period: period}
	if err := a.SetSoftware(cfg.Software); err != nil && cfg.Software != (Software{}) {
		return nil, err
	}
	if cfg.LicenseProviderSite != "" {
		if err := a.SetLicenseProvider(cfg.LicenseProviderSite); err != nil {
			return nil, err
		}
	}
	l := cfg.Limits
	store, err := outbox.Open(filepath.Join(cfg.StateDir, "outbox.db"), outbox.Limits{
		MaxEvents: l.MaxEvents, MaxBytes: l.MaxBytes, MaxAge: l.MaxAge,
		SentEntries: l.SentEntries, SentBytes: l.SentBytes,
	}, now)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrStateDirBusy, cfg.StateDir)
	}
	if err != nil {
		return nil, err
	}
	a.store = store
	return a, nil
}

// Close closes the state directory. It is safe to call twice.
func (a *Agent) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	a.closeTransport()
	return a.store.Close()
}

// Status describes the outbox.
type Status struct {
	Consent   Consent `json:"consent"`
	Events    int64   `json:"events_waiting"`
	Bytes     int64   `json:"bytes_waiting"`
	Dropped   int64   `json:"dropped_by_bounds"`
	Deletions int     `json:"deletion_requests_waiting"`
	Inflight  bool    `json:"batch_in_flight"`
}

// Status returns the consent and the outbox counters.
func (a *Agent) Status() (Status, error) {
	c, err := a.Consent()
	if err != nil {
		return Status{}, err
	}
	st, err := a.store.Stats()
	if err != nil {
		return Status{}, err
	}
	return Status{Consent: c, Events: st.Events, Bytes: st.Bytes, Dropped: st.Dropped, Deletions: st.Deletions, Inflight: st.Inflight}, nil
}

// ManifestVersion is the version of the manifest the agent applies.
func (a *Agent) ManifestVersion() string { return a.m.Version }
