package forward_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/forward/forwardtest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/memlog"
	"github.com/provisionhq/provision/internal/sqlite"
)

// End to end: installations submit over three days; both forwarders run
// from a configuration file against the local GA-rules server and webhook
// receiver; both recipients go down and come back. Each gets exactly the
// permitted fields, once per installation per day, within the rules, with
// nothing lost and nothing twice.
func TestEndToEnd(t *testing.T) {
	t.Run("memory", func(t *testing.T) { endToEnd(t, forwardtest.NewState()) })
	t.Run("sqlite", func(t *testing.T) { endToEnd(t, openSQLiteState(t)) })
}

func endToEnd(t *testing.T, state forward.State) {
	m := manifest.Reference()
	log := memlog.New()
	erased := &forwardtest.Suppressed{}
	ga := forwardtest.NewGA4Server(t, measurementID, apiSecret)
	tp := forwardtest.NewReceiver(t, webhookSecret)

	cfgText := fmt.Sprintf(`
google_analytics:
  measurement_id: %s
  api_secret_env: TEST_GA_SECRET
  endpoint: %s
  ca_file: %s
third_party:
  url: %s/provision/counts
  secret_env: TEST_WEBHOOK_SECRET
  ca_file: %s
retry: {max_attempts: 3, initial_backoff: 1ms, max_backoff: 4ms}
poll_interval: 5ms
redrive_every: 30ms
`, measurementID, ga.Endpoint(), forwardtest.CAFile(t, ga.Server), tp.URL, forwardtest.CAFile(t, tp.Server))
	cfg, err := forward.ParseConfig([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TEST_GA_SECRET": apiSecret, "TEST_WEBHOOK_SECRET": string(webhookSecret)}
	senders, err := cfg.Senders(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics, err := forward.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var fwds forward.Group
	for _, s := range senders {
		o := forward.Options{Manifest: m, Log: log, Checkpoints: log, State: state, Suppressor: erased, Sender: s, Metrics: metrics}
		cfg.Apply(&o)
		f, err := forward.New(o)
		if err != nil {
			t.Fatal(err)
		}
		fwds = append(fwds, f)
	}
	stopped := make(chan struct{})
	go func() { fwds.Run(ctx); close(stopped) }()
	defer func() {
		cancel()
		<-stopped
	}()

	const installations = 6
	regions := []string{"eu", "uk", "br", "us-ca"}
	now := time.Now().UTC()
	days := []time.Time{now.Add(-50 * time.Hour), now.Add(-26 * time.Hour), now.Add(-2 * time.Hour)}
	want := map[string]bool{} // installation|day expected at each recipient
	send := func(d int) {
		at := days[d]
		for i := 1; i <= installations; i++ {
			inst := installation(i)
			region := regions[i%len(regions)]
			// Two batches a day, each with a user count among other events.
			for b := range 2 {
				t2 := at.Add(time.Duration(b) * time.Minute)
				submit(t, m, log, inst, region, t2,
					userCount(fmt.Sprintf("u%d%d", d, b), t2, map[string]any{"software.version": fmt.Sprintf("5.%d", d)}),
					provision.Event{ID: "t", Type: "task", Time: t2, Fields: map[string]any{"task.type": "update", "task.status": "success", "task.duration": 1200}})
			}
			if i != installations { // the last installation asked for deletion
				want[inst+"|"+at.Format("2006-01-02")] = true
			}
		}
	}
	erased.Add(installation(installations))

	// Day 1: all up.
	send(0)
	waitFor(t, "day 1 delivered", func() bool { return len(ga.Accepted()) == installations-1 && len(tp.Received()) == installations-1 })

	// Day 2: both recipients down; the forwarders retry, dead-letter, and
	// ingest goes on regardless.
	ga.Fail(503, -1, 1)
	tp.Fail(503, -1, 0)
	send(1)
	waitFor(t, "dead letters during the outage", func() bool {
		for _, f := range fwds {
			if f.Status(ctx).DeadLetters == 0 {
				return false
			}
		}
		return true
	})
	if sts, healthy := fwds.Status(ctx); healthy {
		t.Errorf("healthy during an outage: %+v", sts)
	}
	ga.Recover()
	tp.Recover()

	// Day 3 arrives while the backlog drains.
	send(2)
	waitFor(t, "everything delivered", func() bool {
		return len(ga.Accepted()) == len(want) && len(tp.Received()) == len(want) && deadLetters(ctx, state) == 0
	})
	time.Sleep(50 * time.Millisecond) // a few more cycles: nothing more may arrive

	gotGA := map[string]int{}
	for _, req := range ga.Accepted() {
		day := time.UnixMicro(req.TimestampMicros).UTC().Format("2006-01-02")
		gotGA[req.ClientID+"|"+day]++
		if len(req.Events) != 1 || req.Events[0].Name != "user_count" {
			t.Errorf("GA events = %+v", req.Events)
		}
		names := slices.Sorted(maps.Keys(req.Events[0].Params))
		if !slices.Equal(names, []string{"os_update_packages_count", "os_update_packages_latest", "os_update_packages_sha256", "os_version", "software_name", "software_version"}) {
			t.Errorf("GA params = %v", names)
		}
	}
	gotTP := map[string]int{}
	for _, d := range tp.Received() {
		gotTP[fmt.Sprint(d.Fields["installation.id"])+"|"+d.Day]++
		if names := slices.Sorted(maps.Keys(d.Fields)); !slices.Equal(names, []string{"installation.id", "os.update_packages", "os.version", "software.name", "software.version"}) {
			t.Errorf("third-party fields = %v", names)
		}
	}
	for name, got := range map[string]map[string]int{"google_analytics": gotGA, "third_party": gotTP} {
		if len(got) != len(want) {
			t.Errorf("%s: %d installation-days, want %d", name, len(got), len(want))
		}
		for k, n := range got {
			if !want[k] || n != 1 {
				t.Errorf("%s: %s received %d times (expected: %v)", name, k, n, want[k])
			}
		}
	}
	if tp.Duplicates() != 0 {
		t.Errorf("%d duplicate webhook deliveries", tp.Duplicates())
	}
	if v := ga.Violations(); len(v) > 0 {
		t.Errorf("GA rules broken: %v", v)
	}
	if ga.Refused() == 0 || tp.Refused() == 0 {
		t.Error("the outage was not exercised")
	}
	for _, f := range fwds {
		st := f.Status(ctx)
		if !st.Healthy || st.Lag != 0 || st.DeadLetters != 0 || st.Sent != uint64(len(want)) {
			t.Errorf("%s final status = %+v", f.Recipient(), st)
		}
		if got := metricValue(t, reg, "provision_forward_sent_total", f.Recipient()); got != float64(len(want)) {
			t.Errorf("%s sent metric = %v", f.Recipient(), got)
		}
		if metricValue(t, reg, "provision_forward_retried_total", f.Recipient()) == 0 {
			t.Errorf("%s retried metric is 0", f.Recipient())
		}
	}
}

// openSQLiteState is the embedded store's forward.State on a fresh file,
// with the forwarders' migration applied.
func openSQLiteState(t *testing.T) forward.State {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "forward.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ddl, err := os.ReadFile("../sqlite/migrations/0200_forward.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(ddl)); err != nil {
		t.Fatal(err)
	}
	return sqlite.NewForwardState(db)
}

func deadLetters(ctx context.Context, st forward.State) int {
	n := 0
	for _, r := range forward.Recipients {
		c, _ := st.CountDeadLetters(ctx, r)
		n += c
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
