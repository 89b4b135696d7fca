package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/sqlite"
)

// serveBackend is where `provision serve` appends: the embedded SQLite
// store by default; with --log nats://… the JetStream log, so the node
// keeps no state (workers move the submissions into PostgreSQL, and
// --store postgres://… answers resends JetStream no longer remembers);
// with only --store postgres://… PostgreSQL itself.
type serveBackend struct {
	log         provision.Log
	ready       func(context.Context) error
	checkpoints provision.Checkpoints // nil when the log's positions are not the store's
	consumers   func(context.Context) ([]string, error)
	close       func() error
	once        sync.Once
}

// openServeBackend opens the backend the flags name; dataDir holds the
// embedded store.
func openServeBackend(ctx context.Context, dataDir string, so *scaleOutFlags, logger *slog.Logger) (*serveBackend, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case so.log != "":
		s, err := so.openScaleOutLog(ctx, logger)
		if err != nil {
			return nil, err
		}
		logger.Info("scale-out ingest", "stream", so.stream, "replicas", so.replicas, "late_resends_from_store", s.Store != nil)
		return &serveBackend{log: s.Log, ready: s.Ready, close: func() error { s.Close(); return nil }}, nil
	case so.store != "":
		pc, err := so.postgresConfig(logger)
		if err != nil {
			return nil, err
		}
		s, err := postgres.Open(ctx, pc)
		if err != nil {
			return nil, err
		}
		return &serveBackend{log: s, ready: s.Ping, checkpoints: s, consumers: s.Consumers, close: s.Close}, nil
	}
	store, err := sqlite.Open(ctx, filepath.Join(dataDir, "provision.db"))
	if err != nil {
		return nil, err
	}
	b := &serveBackend{log: store, ready: store.Ping, checkpoints: store, close: store.Close}
	if c, ok := any(store).(interface {
		Consumers(context.Context) ([]string, error)
	}); ok {
		b.consumers = c.Consumers
	}
	return b, nil
}

// Close closes the backend once; later calls return nil.
func (b *serveBackend) Close() error {
	var err error
	b.once.Do(func() { err = b.close() })
	return err
}
