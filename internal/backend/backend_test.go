package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in     string
		engine Engine
		target string
		err    string
	}{
		{"/var/lib/provision", SQLite, "/var/lib/provision", ""},
		{"data", SQLite, "data", ""},
		{"sqlite:/srv/p", SQLite, "/srv/p", ""},
		{"sqlite:///srv/p", SQLite, "/srv/p", ""},
		{"postgres://u@h/db", Postgres, "postgres://u@h/db", ""},
		{"postgresql://u@h/db", Postgres, "postgresql://u@h/db", ""},
		{"", "", "", "--store: missing"},
		{"sqlite:", "", "", "needs a directory"},
		{"nats://u:secret@h:4222", "", "", "give it as --log"},
		{"mysql://root:hunter2@h/db", "", "", "unknown scheme"},
	} {
		engine, target, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			if err != nil && (strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "hunter2")) {
				t.Errorf("Parse(%q) error shows the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || engine != tc.engine || target != tc.target {
			t.Errorf("Parse(%q) = %q %q %v, want %q %q", tc.in, engine, target, err, tc.engine, tc.target)
		}
	}
}

// The operator commands never create a store: a mistyped directory is an
// error and leaves nothing behind.
func TestOpenDoesNotCreateWithoutCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	_, err := Open(context.Background(), Options{Store: dir})
	if err == nil || !strings.Contains(err.Error(), "no store in") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open made %s: %v", dir, err)
	}
}

func TestLogNeedsPostgres(t *testing.T) {
	_, err := Open(context.Background(), Options{Store: t.TempDir(), Log: "nats://127.0.0.1:4222", Create: true})
	if err == nil || !strings.Contains(err.Error(), "--log needs --store postgres") {
		t.Fatalf("err = %v", err)
	}
}

// Each engine takes a submission, answers its resend with the first
// answer, folds what it stored into the rollups through the one updater,
// and closes twice without error.
func TestBackends(t *testing.T) {
	type tc struct {
		name   string
		opts   func(t *testing.T) Options
		engine Engine
	}
	cases := []tc{
		{"sqlite-dir", func(t *testing.T) Options { return Options{Store: t.TempDir(), Create: true} }, SQLite},
		{"sqlite-url", func(t *testing.T) Options { return Options{Store: "sqlite:" + t.TempDir(), Create: true} }, SQLite},
		{"postgres", func(t *testing.T) Options {
			pc := pgtest.Config(t)
			return Options{Store: pc.URL, Schema: pc.Schema, MaxConns: 2, ApplicationName: pc.ApplicationName}
		}, Postgres},
		{"jetstream", func(t *testing.T) Options {
			pc := pgtest.Config(t)
			lc := natstest.Config(t, natstest.URL(t))
			return Options{Store: pc.URL, Schema: pc.Schema, MaxConns: 2, Log: lc.URL, NATS: lc}
		}, JetStream},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			b, err := Open(ctx, c.opts(t))
			if err != nil {
				t.Fatal(err)
			}
			if b.Engine != c.engine {
				t.Errorf("engine = %s, want %s", b.Engine, c.engine)
			}
			if err := b.Ready(ctx); err != nil {
				t.Fatal(err)
			}
			if b.Stored == nil || b.StoredCheckpoints == nil || b.Rollups == nil || b.Forward == nil || b.Privacy == nil {
				t.Fatalf("missing parts: %+v", b)
			}
			if (b.Checkpoints == nil) != b.HasWorkers() {
				t.Errorf("checkpoints of the ingest log given = %v with workers = %v", b.Checkpoints != nil, b.HasWorkers())
			}
			now := time.Now().UTC()
			sub := &provision.Submission{BatchID: "backend-" + c.name, InstallationID: "i", Region: "eu", ReceivedAt: now,
				Response: []byte(`{"first":true}`),
				Events:   []provision.Event{{ID: "ev-" + c.name, Type: "os", Time: now, Fields: map[string]any{"os.type": "linux"}}}}
			if _, dup, err := b.Log.Append(ctx, sub); err != nil || dup {
				t.Fatalf("append: %v %v", dup, err)
			}
			sub.Response = []byte(`{"second":true}`)
			resp, dup, err := b.Log.Append(ctx, sub)
			if err != nil || !dup || string(resp) != `{"first":true}` {
				t.Fatalf("resend = %s %v %v", resp, dup, err)
			}
			if b.HasWorkers() {
				// What a worker does: move the submission into PostgreSQL.
				if _, err := b.Postgres.Write(ctx, []*provision.Submission{sub}); err != nil {
					t.Fatal(err)
				}
				// A resend JetStream never saw, of a batch a worker stored
				// long ago, is answered from PostgreSQL.
				old := &provision.Submission{BatchID: "old-" + c.name, InstallationID: "i", Region: "eu", ReceivedAt: now,
					Response: []byte(`{"old":true}`)}
				if _, err := b.Postgres.Write(ctx, []*provision.Submission{old}); err != nil {
					t.Fatal(err)
				}
				old.Response = []byte(`{"new":true}`)
				if resp, dup, err := b.Log.Append(ctx, old); err != nil || !dup || string(resp) != `{"old":true}` {
					t.Fatalf("late resend = %s %v %v", resp, dup, err)
				}
			}
			st, err := b.Updater(nil).Update(ctx)
			if err != nil {
				t.Fatal(err)
			}
			head, err := b.Stored.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Records != 1 || st.Through != head {
				t.Errorf("rollup update = %+v, want 1 record through %d", st, head)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal("second close:", err)
			}
		})
	}
}
