package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var day0 = time.Date(2026, 11, 29, 10, 30, 0, 0, time.UTC)

func submission(batch string, at time.Time, eventIDs ...string) *provision.Submission {
	s := &provision.Submission{
		BatchID: batch, InstallationID: "inst-" + batch, Region: provision.RegionEU,
		ManifestVersion: "1", ReceivedAt: at,
		Response: []byte(fmt.Sprintf(`{"batch_id":%q,"accepted":%d}`, batch, len(eventIDs))),
	}
	for _, id := range eventIDs {
		s.Events = append(s.Events, provision.Event{
			ID: id, Type: "software", Time: at.Add(-time.Minute),
			Fields: map[string]any{"software.name": "vpn", "n": json.Number("3"), "location.country": "DE", "location.subdivision": "BY"},
		})
	}
	return s
}

func readAll(t *testing.T, s *postgres.Store) []provision.Record {
	t.Helper()
	var out []provision.Record
	var after int64
	for {
		recs, err := s.Read(context.Background(), after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		after = recs[len(recs)-1].Seq
	}
}

func TestAppendIsIdempotentByBatchID(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t)
	ctx := context.Background()

	first := submission("b1", day0, "e1", "e2")
	resp, dup, err := s.Append(ctx, first)
	if err != nil || dup || string(resp) != string(first.Response) {
		t.Fatalf("first append = %q, %v, %v", resp, dup, err)
	}
	// The resend carries a different answer; the stored one wins.
	again := submission("b1", day0.Add(time.Hour), "e1", "e2", "e3")
	again.Response = []byte(`{"other":true}`)
	resp, dup, err = s.Append(ctx, again)
	if err != nil || !dup || string(resp) != string(first.Response) {
		t.Fatalf("resend = %q, %v, %v; want the first response", resp, dup, err)
	}
	recs := readAll(t, s)
	if len(recs) != 2 {
		t.Fatalf("stored %d records, want 2", len(recs))
	}
	head, err := s.Head(ctx)
	if err != nil || head != recs[1].Seq {
		t.Fatalf("head = %d, %v; want %d", head, err, recs[1].Seq)
	}
	r := recs[0]
	if r.BatchID != "b1" || r.InstallationID != "inst-b1" || r.Region != "eu" || r.Country != "DE" ||
		r.Subdivision != "BY" || !r.ReceivedAt.Equal(day0) || r.Event.ID != "e1" || r.Event.Type != "software" ||
		!r.Event.Time.Equal(day0.Add(-time.Minute)) || r.Event.Fields["software.name"] != "vpn" || r.Event.Fields["n"] != json.Number("3") {
		t.Fatalf("record does not round-trip: %+v", r)
	}
}

func TestSeqIsOrderedAndReadPages(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t)
	ctx := context.Background()
	if head, err := s.Head(ctx); err != nil || head != 0 {
		t.Fatalf("empty head = %d, %v", head, err)
	}
	for i := range 5 {
		if _, _, err := s.Append(ctx, submission(fmt.Sprint("b", i), day0, fmt.Sprint("x", i), fmt.Sprint("y", i))); err != nil {
			t.Fatal(err)
		}
	}
	recs := readAll(t, s)
	if len(recs) != 10 {
		t.Fatalf("got %d records", len(recs))
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Fatalf("seq not increasing at %d: %d then %d", i, recs[i-1].Seq, recs[i].Seq)
		}
	}
	if recs[0].Event.ID != "x0" || recs[1].Event.ID != "y0" || recs[9].Event.ID != "y4" {
		t.Fatalf("order: %s %s … %s", recs[0].Event.ID, recs[1].Event.ID, recs[9].Event.ID)
	}
	got, err := s.Read(ctx, recs[9].Seq, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("read past head = %d records, %v", len(got), err)
	}
	if got, _ := s.Read(ctx, 0, 0); len(got) != 0 {
		t.Fatalf("limit 0 returned %d records", len(got))
	}
}

func TestWriteManyIsIdempotent(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t)
	ctx := context.Background()
	subs := []*provision.Submission{
		submission("a", day0, "a1", "a2"),
		submission("b", day0, "b1"),
		submission("a", day0, "zz"), // same batch again in the same call
		submission("c", day0, "a1", "c1"),
		submission("d", day0), // every event rejected: only the answer is kept
	}
	out, err := s.Write(ctx, subs)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		dup    bool
		stored int
		resp   string
	}{{false, 2, string(subs[0].Response)}, {false, 1, string(subs[1].Response)}, {true, 0, string(subs[0].Response)}, {false, 2, string(subs[3].Response)}, {false, 0, string(subs[4].Response)}}
	for i, w := range want {
		if out[i].Duplicate != w.dup || out[i].Stored != w.stored || string(out[i].Response) != w.resp {
			t.Errorf("outcome %d = %+v, want %+v", i, out[i], w)
		}
	}
	// A worker that committed but crashed before acknowledging writes the
	// same submissions again.
	out, err = s.Write(ctx, subs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if !o.Duplicate || o.Stored != 0 {
			t.Errorf("rewrite outcome %d = %+v", i, o)
		}
	}
	// c is another installation's batch: its a1 is its own event.
	if n := len(readAll(t, s)); n != 5 {
		t.Fatalf("stored %d events, want 5", n)
	}
	if resp, err := s.LookupResponse(ctx, "inst-d", "d"); err != nil || string(resp) != string(subs[4].Response) {
		t.Fatalf("lookup = %q, %v", resp, err)
	}
	if _, err := s.LookupResponse(ctx, "inst-d", "nope"); !errors.Is(err, provision.ErrNotFound) {
		t.Fatalf("lookup of unknown batch: %v", err)
	}
}

// Several writers with overlapping batches: every batch is stored once, and
// the sequence numbers have no gaps and no repeats.
func TestConcurrentWritersStoreEachBatchOnce(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t)
	ctx := context.Background()
	const writers, batches = 4, 30
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				// Writers share batches pairwise.
				batch := fmt.Sprintf("b%d-%d", w/2, b)
				sub := submission(batch, day0, fmt.Sprintf("e%d", b), fmt.Sprintf("e%d", b+1), fmt.Sprintf("w%d-%d", w/2, b))
				if _, err := s.Write(ctx, []*provision.Submission{sub, submission(fmt.Sprintf("solo%d-%d", w, b), day0, fmt.Sprintf("s%d-%d", w, b))}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	recs := readAll(t, s)
	seen := map[string]bool{}
	for i, r := range recs {
		key := r.InstallationID + "/" + r.Event.ID
		if seen[key] {
			t.Fatalf("event %s stored twice", key)
		}
		seen[key] = true
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}
	// Two shared batch series of three events, and each writer's solos.
	if want := 2*batches*3 + writers*batches; len(recs) != want {
		t.Fatalf("stored %d events, want %d", len(recs), want)
	}
}

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t)
	ctx := context.Background()
	if seq, err := s.Checkpoint(ctx, "rollup"); err != nil || seq != 0 {
		t.Fatalf("new checkpoint = %d, %v", seq, err)
	}
	for _, v := range []int64{5, 9} {
		if err := s.SetCheckpoint(ctx, "rollup", v); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := s.Checkpoint(ctx, "rollup"); err != nil || seq != 9 {
		t.Fatalf("checkpoint = %d, %v", seq, err)
	}
	if seq, _ := s.Checkpoint(ctx, "forward"); seq != 0 {
		t.Fatalf("other consumer = %d", seq)
	}
	if err := s.SetCheckpoint(ctx, "", 1); err == nil {
		t.Fatal("empty consumer name accepted")
	}
}

func TestRetentionDropsDayPartitions(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t)
	ctx := context.Background()
	for i := range 3 {
		at := day0.AddDate(0, 0, i)
		if _, _, err := s.Append(ctx, submission(fmt.Sprint("b", i), at, fmt.Sprint("e", i))); err != nil {
			t.Fatal(err)
		}
	}
	parts, err := s.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Three days written plus two ahead of the newest.
	if fmt.Sprint(parts) != "[log_batches_p20261129 log_batches_p20261130 log_batches_p20261201 log_batches_p20261202 log_batches_p20261203]" {
		t.Fatalf("partitions = %v", parts)
	}
	dropped, err := s.DropBefore(ctx, day0.AddDate(0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dropped) != "[log_batches_p20261129 log_batches_p20261130]" {
		t.Fatalf("dropped = %v", dropped)
	}
	recs := readAll(t, s)
	if len(recs) != 1 || recs[0].Event.ID != "e2" {
		t.Fatalf("after retention: %+v", recs)
	}
	if _, err := s.LookupResponse(ctx, "inst-b0", "b0"); !errors.Is(err, provision.ErrNotFound) {
		t.Fatalf("batch key of a dropped day kept: %v", err)
	}
	// Writing into a dropped day recreates its partition.
	if _, _, err := s.Append(ctx, submission("late", day0, "late1")); err != nil {
		t.Fatal(err)
	}
}

func TestOpenConcurrentlyMigratesOnce(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Config(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, 3)
	errs := make([]error, 3)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(ctx, cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		defer stores[i].Close()
	}
	conn, err := pgx.Connect(ctx, cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var versions []int32
	if err := conn.QueryRow(ctx, "SELECT array_agg(version ORDER BY version) FROM "+cfg.Schema+".schema_migrations").Scan(&versions); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int32]bool{}
	for _, v := range versions {
		seen[v] = true
	}
	if len(versions) != len(files) || len(seen) != len(files) {
		t.Fatalf("schema_migrations records versions %v, want each of the %d migrations once", versions, len(files))
	}
	if err := stores[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := stores[0].Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

// A backend killed under the store (as an outage or a failover does) gives
// an error the caller can retry, and the store works again afterwards.
func TestTerminatedConnectionIsUnavailable(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Config(t)
	cfg.MaxConns = 1
	ctx := context.Background()
	s, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Append(ctx, submission("b1", day0, "e1")); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, cfg.ApplicationName); err != nil {
		t.Fatal(err)
	}
	_, err = s.Head(ctx)
	if err == nil {
		t.Fatal("query on a terminated connection succeeded")
	}
	if !errors.Is(err, provision.ErrUnavailable) {
		t.Fatalf("error is not ErrUnavailable: %v", err)
	}
	var head int64
	for range 50 {
		if head, err = s.Head(ctx); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || head != 1 {
		t.Fatalf("after reconnect: head %d, %v", head, err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*postgres.Config)
		want string
	}{
		{"no url", func(c *postgres.Config) { c.URL = "" }, "postgres.url"},
		{"negative pool", func(c *postgres.Config) { c.MaxConns = -1 }, "postgres.max_conns"},
		{"min above max", func(c *postgres.Config) { c.MaxConns = 2; c.MinConns = 3 }, "postgres.min_conns"},
		{"bad schema", func(c *postgres.Config) { c.Schema = "x; DROP TABLE y" }, "postgres.schema"},
		{"partitions ahead", func(c *postgres.Config) { c.PartitionsAhead = 90 }, "postgres.partitions_ahead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := postgres.DefaultConfig("postgres://127.0.0.1/x")
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want mention of %s", err, tc.want)
			}
		})
	}
	if err := postgres.DefaultConfig("postgres://127.0.0.1/x").Validate(); err != nil {
		t.Fatal(err)
	}
}

// Ping writes: it fails while its row cannot be written, which a ping of
// the connection alone would not notice, and passes again afterwards.
func TestPingWrites(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Config(t)
	ctx := context.Background()
	s, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var probed time.Time
	if err := conn.QueryRow(ctx, `SELECT probed_at FROM `+cfg.Schema+`.health_probe`).Scan(&probed); err != nil {
		t.Fatalf("no probe row: %v", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+cfg.Schema+`.health_probe IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = s.Ping(short)
	cancel()
	if err == nil {
		t.Error("Ping passed while its row could not be written")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after the lock was released: %v", err)
	}
}
