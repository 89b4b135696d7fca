// Package backend opens the storage engines a Provision command runs on
// from the URLs an operator gives: the embedded SQLite store of a data
// directory, PostgreSQL, or a JetStream log in front of PostgreSQL. Every
// command — serve, worker, report, rollup, privacy, forward status and the
// dashboard — goes through Open, so the scale-out deployment has the same
// operations as the embedded one.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/sqlite"
)

// Engine names the kind of deployment a Backend runs on.
type Engine string

const (
	SQLite    Engine = "sqlite"        // embedded: one file in a data directory
	Postgres  Engine = "postgres"      // PostgreSQL is both the log and the store
	JetStream Engine = "nats+postgres" // JetStream log, PostgreSQL store fed by workers
)

// StoreFile is the embedded store's file inside a data directory.
const StoreFile = "provision.db"

// Options says what to open.
type Options struct {
	// Store is a data directory, "sqlite:DIR", or a postgres:// URL.
	Store string
	// Log, when set, is a nats:// URL (several separated by commas): ingest
	// appends to JetStream and workers move the submissions into Store,
	// which must then be PostgreSQL.
	Log string
	// Create lets Open make a missing SQLite store (serve, demo). The
	// operator commands leave it false, so a mistyped directory is an
	// error rather than a new empty store.
	Create bool

	// PostgreSQL tuning; zero values keep the defaults.
	Schema          string
	MaxConns        int32
	ApplicationName string

	// NATS holds the JetStream settings; its URL is taken from Log. The
	// zero value means natslog.DefaultConfig.
	NATS natslog.Config

	Logger *slog.Logger // nil discards
}

// Backend is everything a command needs from the engines. Fields that an
// engine cannot provide are nil, as documented on each.
type Backend struct {
	Engine Engine
	// Dir is the data directory of the embedded store; empty otherwise.
	Dir string

	// Log is where ingest appends accepted submissions.
	Log provision.Log
	// Ready reports whether Log takes writes now.
	Ready func(context.Context) error
	// Checkpoints and Consumers describe the consumers of Log, for the lag
	// metric. Nil with JetStream: PostgreSQL positions cannot be compared
	// with the stream's head.
	Checkpoints provision.Checkpoints
	Consumers   func(context.Context) ([]string, error)

	// Stored is the log of stored events that rollups, forwarders, reports
	// and erasure read: Log itself, or PostgreSQL behind JetStream.
	Stored provision.Log
	// StoredCheckpoints are the consumers' positions in Stored.
	StoredCheckpoints provision.Checkpoints
	// Rollups hold the per-day cells that reports and the dashboard read.
	Rollups rollup.Store
	// Forward is the forwarders' state (sent marks, dead letters).
	Forward forward.State
	// Privacy is the store of erasures, tombstones, the audit log and
	// retention marks.
	Privacy privacy.Store

	// The engines themselves, for the jobs bound to one of them (the
	// JetStream worker); nil when not in use.
	SQLite   *sqlite.Store
	Postgres *postgres.Store
	NATS     *natslog.Log

	close func() error
}

// Close closes every engine; it is safe to call more than once and
// returns the first call's error each time.
func (b *Backend) Close() error { return b.close() }

// Updater returns the rollup updater over this backend: the one job that
// folds stored events into the rollups, whoever runs it (serve on the
// embedded store, the workers in scale-out, `rollup update`, the demo).
func (b *Backend) Updater(logger *slog.Logger) *rollup.Updater {
	return &rollup.Updater{Log: b.Stored, Store: b.Rollups, Logger: logger}
}

// HasWorkers reports whether separate worker processes move the log into
// the store (and keep the rollups), so a server need not.
func (b *Backend) HasWorkers() bool { return b.Engine == JetStream }

// Describe names the backend for logs and messages without secrets: the
// directory, or the engines.
func (b *Backend) Describe() string {
	if b.Engine == SQLite {
		return "sqlite:" + b.Dir
	}
	return string(b.Engine)
}

// Open opens what o names.
func Open(ctx context.Context, o Options) (*Backend, error) {
	kind, target, err := Parse(o.Store)
	if err != nil {
		return nil, err
	}
	var b *Backend
	switch {
	case o.Log != "":
		if kind != Postgres {
			return nil, errors.New("--log needs --store postgres://…: resends after the duplicate window, checkpoints and erasure live in PostgreSQL")
		}
		b, err = openJetStream(ctx, o)
	case kind == Postgres:
		b, err = openPostgres(ctx, o)
	default:
		b, err = openSQLite(ctx, target, o.Create)
	}
	if err != nil {
		return nil, err
	}
	b.close = sync.OnceValue(b.close)
	return b, nil
}

// Parse tells which engine a --store value names and returns its target:
// the directory for SQLite, the URL for PostgreSQL.
func Parse(store string) (Engine, string, error) {
	switch {
	case store == "":
		return "", "", errors.New("--store: missing: give a data directory, sqlite:DIR or postgres://…")
	case strings.HasPrefix(store, "postgres://"), strings.HasPrefix(store, "postgresql://"):
		return Postgres, store, nil
	case strings.HasPrefix(store, "sqlite:"):
		dir := strings.TrimPrefix(strings.TrimPrefix(store, "sqlite:"), "//")
		if dir == "" {
			return "", "", errors.New("--store: sqlite: needs a directory, as in sqlite:/var/lib/provision")
		}
		return SQLite, dir, nil
	case strings.HasPrefix(store, "nats://"), strings.HasPrefix(store, "tls://"):
		return "", "", fmt.Errorf("--store: %s is a log; give it as --log, with --store postgres://…", redact(store))
	case strings.Contains(store, "://"):
		return "", "", fmt.Errorf("--store: unknown scheme in %s: want a data directory, sqlite:DIR or postgres://…", redact(store))
	}
	return SQLite, store, nil
}

// redact drops the user information (a password) from a URL for messages.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	return scheme + "://" + rest
}

func openSQLite(ctx context.Context, dir string, create bool) (*Backend, error) {
	path := filepath.Join(dir, StoreFile)
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no store in %s: %w", dir, err)
	}
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	return &Backend{
		Engine: SQLite, Dir: dir,
		Log: s, Ready: s.Ping, Checkpoints: s, Consumers: s.Consumers,
		Stored: s, StoredCheckpoints: s,
		Rollups: sqlite.NewRollupStore(s.DB()), Forward: sqlite.NewForwardState(s.DB()),
		Privacy: sqlite.NewPrivacyStore(s.DB()),
		SQLite:  s, close: s.Close,
	}, nil
}

func (o Options) postgresConfig() (postgres.Config, error) {
	c := postgres.DefaultConfig(o.Store)
	c.Schema, c.MaxConns = o.Schema, o.MaxConns
	if o.ApplicationName != "" {
		c.ApplicationName = o.ApplicationName
	}
	c.Logger = o.Logger
	return c, c.Validate()
}

func openPostgres(ctx context.Context, o Options) (*Backend, error) {
	pc, err := o.postgresConfig()
	if err != nil {
		return nil, err
	}
	s, err := postgres.Open(ctx, pc)
	if err != nil {
		return nil, err
	}
	return &Backend{
		Engine: Postgres,
		Log:    s, Ready: s.Ping, Checkpoints: s, Consumers: s.Consumers,
		Stored: s, StoredCheckpoints: s,
		Rollups: s.Rollups(), Forward: s.ForwardState(), Privacy: postgres.NewPrivacyStore(s),
		Postgres: s, close: s.Close,
	}, nil
}

// NATSConfig returns the JetStream configuration o describes.
func (o Options) NATSConfig() (natslog.Config, error) {
	if !strings.HasPrefix(o.Log, "nats://") && !strings.HasPrefix(o.Log, "tls://") {
		return natslog.Config{}, fmt.Errorf("--log: want a nats:// URL, got %s", redact(o.Log))
	}
	c := o.NATS
	if c.Stream == "" {
		c = natslog.DefaultConfig("")
	}
	c.URL = o.Log
	if o.ApplicationName != "" {
		c.Name = o.ApplicationName
	}
	c.Logger = o.Logger
	return c, c.Validate()
}

func openJetStream(ctx context.Context, o Options) (*Backend, error) {
	nc, err := o.NATSConfig()
	if err != nil {
		return nil, err
	}
	b, err := openPostgres(ctx, o)
	if err != nil {
		return nil, err
	}
	s := b.Postgres
	// A resend that JetStream no longer remembers is answered from what
	// the workers stored.
	nc.Responses = s
	l, err := natslog.Open(ctx, nc)
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	b.Engine = JetStream
	b.Log, b.Ready, b.NATS = l, l.Ping, l
	b.Checkpoints, b.Consumers = nil, nil
	b.close = func() error { return errors.Join(l.Close(), s.Close()) }
	return b, nil
}
