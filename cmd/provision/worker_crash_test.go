package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
)

// A worker process killed with SIGKILL in the middle of its work loses and
// duplicates nothing: a second worker process finishes, and every event is
// in PostgreSQL exactly once.
func TestWorkerProcessKilledLosesAndDuplicatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	lc := natstest.Config(t, natstest.URL(t))
	pc := pgtest.Config(t)
	ctx := context.Background()

	bin := filepath.Join(t.TempDir(), "provision")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}

	l, err := natslog.Open(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const batches, events = 2000, 5
	now := time.Now().UTC()
	for i := range batches {
		sub := &provision.Submission{BatchID: fmt.Sprint("k", i), InstallationID: "i", Region: "eu", ReceivedAt: now, Response: []byte(`{}`)}
		for j := range events {
			sub.Events = append(sub.Events, provision.Event{ID: fmt.Sprintf("k%d/%d", i, j), Type: "os", Time: now,
				Fields: map[string]any{"os.name": "linux"}})
		}
		if _, _, err := l.Append(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}

	conn, err := pgx.Connect(ctx, pc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func() (rows, distinct int64) {
		// The schema appears when the first worker migrates it. A batch
		// row holds its events; a batch stored twice would hold them twice.
		_ = conn.QueryRow(ctx, "SELECT coalesce(sum(events), 0), $1 * count(DISTINCT batch_id) FROM "+pc.Schema+".log_batches",
			events).Scan(&rows, &distinct)
		return rows, distinct
	}
	worker := func(name string) *exec.Cmd {
		cmd := exec.Command(bin, "worker", "--log", lc.URL, "--store", pc.URL, "--schema", pc.Schema,
			"--stream", lc.Stream, "--subject", lc.Subject, "--batch", "20", "--ack-wait", "2s",
			"--stats-interval", "0", "--rollup-interval", "0", "--instance", name)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	first := worker("first")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if rows, _ := count(); rows > 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = first.Process.Kill()
			t.Fatal("the first worker stored nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	killedAt, _ := count()
	if killedAt >= batches*events {
		t.Fatalf("the first worker finished (%d events) before it was killed", killedAt)
	}

	second := worker("second")
	defer func() { _ = second.Process.Kill(); _ = second.Wait() }()
	for {
		rows, distinct := count()
		if rows != distinct {
			t.Fatalf("%d rows for %d distinct events", rows, distinct)
		}
		if rows == batches*events {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events stored", rows, batches*events)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("killed the first worker after %d events; the second stored the rest", killedAt)
}
