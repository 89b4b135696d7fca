// Package postgres stores the log of accepted events, the batch answers and
// the consumers' checkpoints in PostgreSQL, for deployments that outgrow the
// embedded store. It implements provision.Log and provision.Checkpoints with
// the same semantics as the embedded store, and a bulk Write that workers
// use to move many submissions from the replicated log in one transaction.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config says how to reach PostgreSQL and how to size the pool.
type Config struct {
	// URL is a postgres:// connection string.
	URL string
	// MaxConns caps the pool; 0 keeps pgx's default (the larger of 4 and
	// the number of CPUs).
	MaxConns int32
	// MinConns keeps that many connections open while idle.
	MinConns int32
	// ApplicationName is shown in pg_stat_activity, so an operator can
	// tell ingest nodes from workers.
	ApplicationName string
	// Schema, when set, is where the tables live (search_path); it is
	// created if missing. Empty uses the connection's default.
	Schema string
	// PartitionsAhead is how many days of partitions are created ahead of
	// the newest day written, so midnight does not wait on DDL.
	PartitionsAhead int
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig(url string) Config {
	return Config{URL: url, ApplicationName: "provision", PartitionsAhead: 2}
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate names the first bad field.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("postgres.url: required"))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("postgres.max_conns: %d is negative", c.MaxConns))
	}
	if c.MinConns < 0 || (c.MaxConns > 0 && c.MinConns > c.MaxConns) {
		errs = append(errs, fmt.Errorf("postgres.min_conns: %d must be between 0 and max_conns", c.MinConns))
	}
	if c.Schema != "" && !schemaName.MatchString(c.Schema) {
		errs = append(errs, fmt.Errorf("postgres.schema: %q is not a lower-case identifier", c.Schema))
	}
	if c.PartitionsAhead < 0 || c.PartitionsAhead > 31 {
		errs = append(errs, fmt.Errorf("postgres.partitions_ahead: %d is outside 0..31", c.PartitionsAhead))
	}
	return errors.Join(errs...)
}

// Store is the PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	ahead  int
	now    func() time.Time
	closer sync.Once

	mu         sync.Mutex
	partitions map[string]bool // partition names known to exist

	vacuum vacuumer
}

// Open connects, applies the migrations that are missing and returns the
// store. Several processes may open the same database at once: migrations
// are serialised by an advisory lock.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if cfg.MinConns > 0 {
		pc.MinConns = cfg.MinConns
	}
	if cfg.ApplicationName != "" {
		pc.ConnConfig.RuntimeParams["application_name"] = cfg.ApplicationName
	}
	if cfg.Schema != "" {
		pc.ConnConfig.RuntimeParams["search_path"] = cfg.Schema
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", classify(err))
	}
	s := &Store{pool: pool, log: logger, ahead: cfg.PartitionsAhead, now: time.Now, partitions: map[string]bool{}}
	if cfg.Schema != "" {
		// The identifier was checked by Validate, so it can be spliced.
		// Concurrent CREATE SCHEMA IF NOT EXISTS can collide in the
		// catalog, so openers take turns.
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('provision/create-schema'))`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+cfg.Schema)
			return err
		})
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres: create schema: %w", classify(err))
		}
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the pool. It is safe to call more than once.
func (s *Store) Close() error {
	s.closer.Do(func() {
		s.vacuum.wg.Wait()
		s.pool.Close()
	})
	return nil
}

// Ping reports whether the database takes a write now: it rewrites the
// probe's row, and the commit waits for its WAL record to be flushed, so
// a full disk or a read-only database fails it. Readiness probes use it;
// callers rate-limit it.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO health_probe (id, probed_at) VALUES (1, now())
		ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at`); err != nil {
		return fmt.Errorf("postgres: ping: %w", classify(err))
	}
	return nil
}
