// Package pgtest gives tests a PostgreSQL store of their own: a fresh schema
// in the database at PROVISION_TEST_POSTGRES, dropped when the test ends, so
// tests run in parallel and leave nothing behind.
package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/servicetest"
)

// URL returns the test database's URL. Without PROVISION_TEST_POSTGRES the
// test is skipped, unless PROVISION_REQUIRE_SERVICES=1 makes that a failure.
func URL(tb testing.TB) string {
	tb.Helper()
	return servicetest.URL(tb, "PROVISION_TEST_POSTGRES")
}

// Name returns a random lower-case identifier starting with prefix.
func Name(prefix string) string { return servicetest.Name(prefix) }

// Schema returns the name of a schema that the test may use and that is
// dropped, with everything in it, when the test ends.
func Schema(tb testing.TB, url string) string {
	tb.Helper()
	name := Name("t_")
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return name
}

// Config returns a store configuration on a fresh schema.
func Config(tb testing.TB) postgres.Config {
	tb.Helper()
	url := URL(tb)
	cfg := postgres.DefaultConfig(url)
	cfg.Schema = Schema(tb, url)
	cfg.ApplicationName = cfg.Schema
	cfg.MaxConns = 4
	return cfg
}

// Open returns a store on a fresh schema, closed when the test ends.
func Open(tb testing.TB) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), Config(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
