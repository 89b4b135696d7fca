package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/natslog"
)

// storeFlags point a command at its backend: a data directory (--data, the
// embedded SQLite store) or a URL (--store sqlite:DIR or postgres://…),
// and for serve and worker a JetStream log (--log nats://…).
type storeFlags struct {
	data, store, log string
	stream           string
	subject          string
	replicas         int
	dupWindow        time.Duration
	maxAge           time.Duration
	schema           string
	maxConns         int32
	applicationTag   string
}

// registerStore adds --store and the PostgreSQL tuning flags.
func (f *storeFlags) registerStore(cmd *cobra.Command, role string) {
	cmd.Flags().StringVar(&f.store, "store", "", "store `URL`: a data directory, sqlite:DIR or postgres://USER@HOST:5432/DB (env PROVISION_STORE)")
	cmd.Flags().StringVar(&f.schema, "schema", "", "PostgreSQL `SCHEMA` for the tables (default: the connection's search_path)")
	cmd.Flags().Int32Var(&f.maxConns, "max-conns", 8, "PostgreSQL connection pool size")
	f.applicationTag = "provision-" + role
}

// registerData adds --data, the embedded store's shorthand.
func (f *storeFlags) registerData(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.data, "data", "", "data `DIR` of the embedded store, the same as --store sqlite:DIR (env PROVISION_DATA)")
}

// registerLog adds --log and the JetStream settings.
func (f *storeFlags) registerLog(cmd *cobra.Command) {
	d := natslog.DefaultConfig("")
	cmd.Flags().StringVar(&f.log, "log", "", "NATS JetStream `URL` of the replicated log (nats://HOST:4222, several separated by commas)")
	cmd.Flags().StringVar(&f.stream, "stream", d.Stream, "JetStream stream `NAME` of the submissions; its dead letters go to NAME_DEAD")
	cmd.Flags().StringVar(&f.subject, "subject", d.Subject, "NATS `SUBJECT` of the submissions; dead letters go to SUBJECT.dead")
	cmd.Flags().IntVar(&f.replicas, "replicas", d.Replicas, "stream replicas: 1 on one server, 3 in a cluster")
	cmd.Flags().DurationVar(&f.dupWindow, "duplicate-window", d.DuplicateWindow, "how long JetStream remembers batch ids")
	cmd.Flags().DurationVar(&f.maxAge, "log-max-age", d.MaxAge, "how long the stream keeps submissions for replay")
}

// target is the --store value, or --data as its shorthand, or their
// environment variables.
func (f *storeFlags) target(e *env) (string, error) {
	if f.store != "" && f.data != "" {
		return "", errors.New("give --store or --data, not both")
	}
	for _, v := range []string{f.store, f.data, e.getenv("PROVISION_STORE"), e.getenv("PROVISION_DATA")} {
		if v != "" {
			return v, nil
		}
	}
	return "", errors.New("--store URL or --data DIR (or PROVISION_STORE, PROVISION_DATA) is required")
}

// options returns what backend.Open needs for store.
func (f *storeFlags) options(store string, create bool, logger *slog.Logger) backend.Options {
	nc := natslog.DefaultConfig("")
	if f.stream != "" {
		nc.Stream, nc.Subject = f.stream, f.subject
		nc.DeadStream, nc.DeadSubject = f.stream+"_DEAD", f.subject+".dead"
		nc.Replicas, nc.DuplicateWindow, nc.MaxAge = f.replicas, f.dupWindow, f.maxAge
	}
	return backend.Options{
		Store: store, Log: f.log, Create: create,
		Schema: f.schema, MaxConns: f.maxConns, ApplicationName: f.applicationTag,
		NATS: nc, Logger: logger,
	}
}

// open opens an existing store for an operator command.
func (f *storeFlags) open(ctx context.Context, e *env) (*backend.Backend, error) {
	store, err := f.target(e)
	if err != nil {
		return nil, err
	}
	return backend.Open(ctx, f.options(store, false, nil))
}
