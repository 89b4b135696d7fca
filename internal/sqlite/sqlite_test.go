package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/sqlite"
	"github.com/provisionhq/provision/internal/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return open(t, filepath.Join(t.TempDir(), "provision.db"))
	})
}

func TestReopenKeepsLogAndCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "provision.db")
	s := open(t, path)
	first := storetest.Submission("b1", "e", 3)
	if _, _, err := s.Append(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCheckpoint(t.Context(), "rollup", 2); err != nil {
		t.Fatal(err)
	}
	head, _ := s.Head(t.Context())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path) // migrations run again and must find nothing to do
	defer s.Close()
	if h, _ := s.Head(t.Context()); h != head || h == 0 {
		t.Errorf("Head after reopen = %d, want %d", h, head)
	}
	if seq, _ := s.Checkpoint(t.Context(), "rollup"); seq != 2 {
		t.Errorf("checkpoint after reopen = %d, want 2", seq)
	}
	resp, dup, err := s.Append(t.Context(), storetest.Submission("b1", "e", 3))
	if err != nil || !dup || string(resp) != string(first.Response) {
		t.Errorf("resend after reopen = %s, %v, %v", resp, dup, err)
	}
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n == 0 {
		t.Errorf("schema_migrations has %d rows, %v", n, err)
	}
}

func TestHeadDoesNotMoveBackAfterErasure(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "provision.db"))
	defer s.Close()
	if _, _, err := s.Append(t.Context(), storetest.Submission("b1", "e", 3)); err != nil {
		t.Fatal(err)
	}
	head, _ := s.Head(t.Context())
	// Erasure of the newest rows must not let their positions be reused,
	// or a consumer at head would skip the next events.
	if _, err := s.DB().Exec(`DELETE FROM log_batches`); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Head(t.Context()); h != head {
		t.Errorf("Head after erasure = %d, want %d", h, head)
	}
	if _, _, err := s.Append(t.Context(), storetest.Submission("b2", "f", 1)); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Read(t.Context(), head, 10)
	if err != nil || len(recs) != 1 || recs[0].Seq <= head {
		t.Errorf("after erasure: %v, %v", recs, err)
	}
}

// TestAppendWithOneConnection guards against the writer asking the pool
// for a second connection while its transaction holds the first.
func TestAppendWithOneConnection(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "provision.db"))
	defer s.Close()
	s.DB().SetMaxOpenConns(1)
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Append(t.Context(), storetest.Submission("b1", "e", 70)) // one full chunk and a partial one
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Append deadlocked on the connection pool")
	}
	if h, _ := s.Head(t.Context()); h != 70 {
		t.Errorf("Head = %d, want 70", h)
	}
}

// Ping is a synced write of the probe's row, not a read: it fails while
// another writer holds the database and while the file is closed.
// (cmd/provision's TestServeReadinessHealsAfterFullDisk fills a disk.)
func TestPingWrites(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "provision.db"))
	defer s.Close()
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	var first, second int64
	if err := s.DB().QueryRowContext(ctx, `SELECT probed_at FROM health_probe WHERE id = 1`).Scan(&first); err != nil {
		t.Fatalf("no probe row: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().QueryRowContext(ctx, `SELECT probed_at FROM health_probe WHERE id = 1`).Scan(&second); err != nil || second <= first {
		t.Errorf("the second Ping did not rewrite the row: %d then %d, %v", first, second, err)
	}

	tx, err := s.DB().BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err = s.Ping(short)
	cancel()
	if err == nil {
		t.Error("Ping passed while another writer held the database")
	}
	tx.Rollback()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after the writer finished: %v", err)
	}
	s.Close()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping passed on a closed store")
	}
}
