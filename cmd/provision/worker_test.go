package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/rollup"
)

func TestWorkerCommandMovesSubmissionsToPostgres(t *testing.T) {
	lc := natstest.Config(t, natstest.URL(t))
	pc := pgtest.Config(t)
	ctx := context.Background()
	l, err := natslog.Open(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	now := time.Now().UTC()
	for i := range 20 {
		sub := &provision.Submission{
			BatchID: fmt.Sprint("cmd-", i), InstallationID: "i", Region: "eu", ReceivedAt: now,
			Response: []byte(`{}`),
			Events:   []provision.Event{{ID: fmt.Sprint("ev-", i), Type: "os", Time: now, Fields: map[string]any{"os.name": "linux"}}},
		}
		if _, _, err := l.Append(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}

	wctx, stop := context.WithCancel(ctx)
	var stderr bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run(wctx, []string{"worker", "--log", lc.URL, "--store", pc.URL, "--schema", pc.Schema,
			"--stream", lc.Stream, "--subject", lc.Subject, "--stats-interval", "0", "--concurrency", "2", "--instance", pc.Schema,
			"--rollup-interval", "100ms"},
			func(string) string { return "" }, strings.NewReader(""), &bytes.Buffer{}, &stderr)
	}()
	deadline := time.Now().Add(30 * time.Second)
	var stored, rolled int64
	for (stored < 20 || rolled < 20) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if s, err := postgres.Open(ctx, pc); err == nil {
			stored, _ = s.Head(ctx)
			rolled, _ = s.Rollups().Checkpoint(ctx, rollup.DefaultConsumer)
			s.Close()
		}
	}
	stop()
	if code := <-done; code != exitOK {
		t.Fatalf("worker exited %d: %s", code, stderr.String())
	}
	if stored != 20 {
		t.Fatalf("%d events stored, want 20; log:\n%s", stored, stderr.String())
	}
	if rolled != 20 {
		t.Fatalf("rollups folded in events up to %d, want 20", rolled)
	}
	if !strings.Contains(stderr.String(), "worker stopped") {
		t.Fatalf("no shutdown line in the log:\n%s", stderr.String())
	}
}

func TestWorkerCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"worker"},
		{"worker", "--log", "http://x", "--store", "postgres://127.0.0.1/x"},
		{"worker", "--log", "nats://127.0.0.1:1", "--store", "mysql://x"},
		{"worker", "--log", "nats://127.0.0.1:1", "--store", "postgres://127.0.0.1/x", "--batch", "0"},
	} {
		if code, _, stderr := runCmd(t, "", args...); code != exitError || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
