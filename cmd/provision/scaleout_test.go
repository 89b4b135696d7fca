package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/rollup"
)

// The operator commands work against a scale-out deployment: a fleet goes
// through JetStream, the worker command stores it in PostgreSQL and keeps
// the rollups, and `report quality --store postgres://…` publishes the
// same report as the embedded store holding the same fleet.
func TestReportAgainstScaleOut(t *testing.T) {
	lc := natstest.Config(t, natstest.URL(t))
	pc := pgtest.Config(t)
	ctx := context.Background()
	dir, f := fleetData(t)

	l, err := natslog.Open(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := f.Fill(ctx, l); err != nil {
		t.Fatal(err)
	}
	// The embedded store holds the same fleet: PostgreSQL is complete
	// when its log reaches the same head.
	emb, err := backend.Open(ctx, backend.Options{Store: dir})
	if err != nil {
		t.Fatal(err)
	}
	want, err := emb.Stored.Head(ctx)
	emb.Close()
	if err != nil || want == 0 {
		t.Fatalf("embedded head %d: %v", want, err)
	}

	began := time.Now()
	wctx, stop := context.WithCancel(ctx)
	var stderr bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run(wctx, []string{"worker", "--log", lc.URL, "--store", pc.URL, "--schema", pc.Schema,
			"--stream", lc.Stream, "--subject", lc.Subject, "--stats-interval", "0", "--rollup-interval", "100ms"},
			func(string) string { return "" }, strings.NewReader(""), &bytes.Buffer{}, &stderr)
	}()
	s, err := postgres.Open(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var rolled, head int64
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		head, _ = s.Head(ctx)
		rolled, _ = s.Rollups().Checkpoint(ctx, rollup.DefaultConsumer)
		if head == want && rolled == head {
			break
		}
	}
	stop()
	if code := <-done; code != exitOK {
		t.Fatalf("worker exited %d: %s", code, stderr.String())
	}
	if head != want || rolled != head {
		t.Fatalf("stored through %d of %d, rollups through %d", head, want, rolled)
	}

	t.Logf("the worker stored and rolled up %d records in %s", head, time.Since(began).Round(time.Millisecond))
	period := []string{"--from", "2026-10-01", "--to", "2026-10-21", "--format", "json"}
	code, embedded, errOut := runCmd(t, "", append([]string{"report", "quality", "--data", dir}, period...)...)
	if code != exitFinding {
		t.Fatalf("embedded report: exit %d %s", code, errOut)
	}
	code, scaleOut, errOut := runCmd(t, "", append([]string{"report", "quality", "--store", pc.URL, "--schema", pc.Schema, "--no-update"}, period...)...)
	if code != exitFinding || !strings.Contains(errOut, "flags raised") {
		t.Fatalf("scale-out report: exit %d %s", code, errOut)
	}
	if !strings.Contains(scaleOut, f.Planted.FailingCampaign) {
		t.Errorf("the scale-out report does not flag the failing campaign:\n%.500s", scaleOut)
	}
	if scaleOut != embedded {
		t.Errorf("the scale-out report differs from the embedded one:\nscale-out: %.800s\nembedded:  %.800s", scaleOut, embedded)
	}
	// forward status and rollup update take the same --store.
	if code, out, errOut := runCmd(t, "", "forward", "status", "--store", pc.URL, "--schema", pc.Schema); code == exitError || !strings.Contains(out, "google_analytics") {
		t.Errorf("forward status: exit %d %s %s", code, out, errOut)
	}
	if code, out, errOut := runCmd(t, "", "rollup", "update", "--store", pc.URL, "--schema", pc.Schema); code != exitOK || !strings.Contains(out, "rollup: 0 records") {
		t.Errorf("rollup update: exit %d %s %s", code, out, errOut)
	}
}
