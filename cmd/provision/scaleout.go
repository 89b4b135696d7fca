package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/postgres"
)

// scaleOutFlags are the flags that point a command at the scale-out engines:
// NATS JetStream as the log, PostgreSQL as the store.
type scaleOutFlags struct {
	log, store     string
	stream         string
	subject        string
	replicas       int
	dupWindow      time.Duration
	maxAge         time.Duration
	schema         string
	maxConns       int32
	applicationTag string
}

func (f *scaleOutFlags) register(cmd *cobra.Command, role string) {
	d := natslog.DefaultConfig("")
	cmd.Flags().StringVar(&f.log, "log", "", "NATS JetStream `URL` of the replicated log (nats://HOST:4222, several separated by commas)")
	cmd.Flags().StringVar(&f.store, "store", "", "PostgreSQL `URL` of the store (postgres://USER@HOST:5432/DB)")
	cmd.Flags().StringVar(&f.stream, "stream", d.Stream, "JetStream stream `NAME` of the submissions; its dead letters go to NAME_DEAD")
	cmd.Flags().StringVar(&f.subject, "subject", d.Subject, "NATS `SUBJECT` of the submissions; dead letters go to SUBJECT.dead")
	cmd.Flags().IntVar(&f.replicas, "replicas", d.Replicas, "stream replicas: 1 on one server, 3 in a cluster")
	cmd.Flags().DurationVar(&f.dupWindow, "duplicate-window", d.DuplicateWindow, "how long JetStream remembers batch ids")
	cmd.Flags().DurationVar(&f.maxAge, "log-max-age", d.MaxAge, "how long the stream keeps submissions for replay")
	cmd.Flags().StringVar(&f.schema, "schema", "", "PostgreSQL `SCHEMA` for the tables (default: the connection's search_path)")
	cmd.Flags().Int32Var(&f.maxConns, "max-conns", 8, "PostgreSQL connection pool size")
	f.applicationTag = "provision-" + role
}

func (f *scaleOutFlags) natsConfig(logger *slog.Logger) (natslog.Config, error) {
	if !strings.HasPrefix(f.log, "nats://") && !strings.HasPrefix(f.log, "tls://") {
		return natslog.Config{}, fmt.Errorf("--log: want a nats:// URL, got %q", f.log)
	}
	c := natslog.DefaultConfig(f.log)
	c.Name = f.applicationTag
	c.Stream, c.Subject = f.stream, f.subject
	c.DeadStream, c.DeadSubject = f.stream+"_DEAD", f.subject+".dead"
	c.Replicas, c.DuplicateWindow, c.MaxAge = f.replicas, f.dupWindow, f.maxAge
	c.Logger = logger
	return c, c.Validate()
}

func (f *scaleOutFlags) postgresConfig(logger *slog.Logger) (postgres.Config, error) {
	if !strings.HasPrefix(f.store, "postgres://") && !strings.HasPrefix(f.store, "postgresql://") {
		return postgres.Config{}, fmt.Errorf("--store: want a postgres:// URL")
	}
	c := postgres.DefaultConfig(f.store)
	c.Schema, c.MaxConns = f.schema, f.maxConns
	c.ApplicationName = f.applicationTag
	c.Logger = logger
	return c, c.Validate()
}

// scaleOutLog is what an ingest node needs in the scale-out mode: the
// JetStream log to append to, a readiness check, and the PostgreSQL store
// that answers resends arriving after the duplicate window. The node keeps
// no state of its own.
type scaleOutLog struct {
	Log   *natslog.Log
	Store *postgres.Store // nil when --store was not given
}

// openScaleOutLog connects to the engines named by the flags.
func (f *scaleOutFlags) openScaleOutLog(ctx context.Context, logger *slog.Logger) (*scaleOutLog, error) {
	nc, err := f.natsConfig(logger)
	if err != nil {
		return nil, err
	}
	out := &scaleOutLog{}
	if f.store != "" {
		pc, err := f.postgresConfig(logger)
		if err != nil {
			return nil, err
		}
		if out.Store, err = postgres.Open(ctx, pc); err != nil {
			return nil, err
		}
		nc.Responses = out.Store
	}
	if out.Log, err = natslog.Open(ctx, nc); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// Ready reports whether JetStream takes writes.
func (s *scaleOutLog) Ready(ctx context.Context) error { return s.Log.Ping(ctx) }

// Close closes both connections; safe to call more than once.
func (s *scaleOutLog) Close() {
	if s.Log != nil {
		_ = s.Log.Close()
	}
	if s.Store != nil {
		_ = s.Store.Close()
	}
}
