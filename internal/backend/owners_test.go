package backend

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/privacy"
)

func referenceManifest(t testing.TB) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse("reference.yaml", manifest.ReferenceYAML())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Every table of every store and every stream has an owner that says how
// an installation is erased from it and how retention applies: a new
// table or stream fails here until it is registered in PrivacyOwners.
func TestEveryTableHasAnOwner(t *testing.T) {
	ctx := context.Background()
	m := referenceManifest(t)
	check := func(t *testing.T, r *privacy.Registry, engine string, places []string) {
		t.Helper()
		if len(places) == 0 {
			t.Fatalf("no %s places found: the enumeration is broken", engine)
		}
		if un := r.Unowned(engine, places); len(un) > 0 {
			t.Errorf("%s: no privacy owner for %v: register them in backend.PrivacyOwners", engine, un)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		b, err := Open(ctx, Options{Store: t.TempDir(), Create: true})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		r, err := b.PrivacyOwners(m)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := b.SQLite.DB().QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
		if err != nil {
			t.Fatal(err)
		}
		var tables []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, n)
		}
		check(t, r, privacy.EngineSQLite, tables)
	})
	for _, withLog := range []bool{false, true} {
		name := "postgres"
		if withLog {
			name = "jetstream"
		}
		t.Run(name, func(t *testing.T) {
			pc := pgtest.Config(t)
			o := Options{Store: pc.URL, Schema: pc.Schema, MaxConns: 2}
			if withLog {
				lc := natstest.Config(t, natstest.URL(t))
				o.Log, o.NATS = lc.URL, lc
			}
			b, err := Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			r, err := b.PrivacyOwners(m)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := pgx.Connect(ctx, pc.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			// Partitions belong to their parent's owner.
			rows, err := conn.Query(ctx, `SELECT t.table_name FROM information_schema.tables t
				JOIN pg_class c ON c.relname = t.table_name
				JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = t.table_schema
				WHERE t.table_schema = $1 AND NOT c.relispartition`, pc.Schema)
			if err != nil {
				t.Fatal(err)
			}
			tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			check(t, r, privacy.EnginePostgres, tables)
			if !withLog {
				return
			}
			nc, err := nats.Connect(o.NATS.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			// The server is shared: the test's streams are those named
			// after its configuration.
			var streams []string
			names := js.StreamNames(ctx)
			for n := range names.Name() {
				if strings.HasPrefix(n, o.NATS.Stream) {
					streams = append(streams, n)
				}
			}
			if err := names.Err(); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(streams, o.NATS.DeadStream) {
				t.Fatalf("streams %v: the dead-letter stream is missing", streams)
			}
			check(t, r, privacy.EngineJetStream, streams)
		})
	}
}

// A registry refuses an owner that holds installation data without saying
// how it is erased, and a second owner of the same place.
func TestRegistryRefusesSilentOwners(t *testing.T) {
	var r privacy.Registry
	if err := r.Register(privacy.Owner{Engine: privacy.EngineSQLite, Name: "x", Names: true, Retention: "1d"}); err == nil {
		t.Error("an owner without erasure was accepted")
	}
	o := privacy.Owner{Engine: privacy.EngineSQLite, Name: "y", Retention: "1d"}
	if err := r.Register(o); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(o); err == nil {
		t.Error("a second owner of the same place was accepted")
	}
}
