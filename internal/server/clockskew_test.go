package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provisionhq/provision/agent"
	"github.com/provisionhq/provision/internal/forward/forwardtest"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/wire"
)

// deviceClock is an agent's clock: the server's clock at the moment the
// test says it is (the real time of the device), plus how far the device's
// clock is off.
type deviceClock struct {
	mu     sync.Mutex
	off    time.Duration
	at     time.Time        // the real time, while set
	server func() time.Time // the real time otherwise
}

func (c *deviceClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() {
		return c.at.Add(c.off)
	}
	return c.server().Add(c.off)
}

func (c *deviceClock) set(at time.Time, off time.Duration) {
	c.mu.Lock()
	c.at, c.off = at, off
	c.mu.Unlock()
}

func writeCA(t *testing.T, s *Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.pem")
	if err := os.WriteFile(path, s.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func openSkewAgent(t *testing.T, clock *deviceClock) *agent.Agent {
	t.Helper()
	a, err := agent.Open(agent.Config{
		StateDir: t.TempDir(),
		Software: agent.Software{Type: "vpn", Name: "Secure Connection", Version: "5.14.0.1234", Edition: "premium", Localization: "en-GB"},
		ReadOS: func(context.Context) (agent.OSInfo, error) {
			return agent.OSInfo{Type: "linux", Version: "12 (bookworm)", Edition: "Debian GNU/Linux"}, nil
		},
		Now: clock.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if _, err := a.Accept("eu"); err != nil {
		t.Fatal(err)
	}
	return a
}

// Agents whose clocks run 30 hours and a month ahead, 3 days behind, and
// right, each used on two days, upload through the real agent library to
// the real server (on a clock of its own, injected): no event is refused
// or dropped, every event is stored at the time it happened by the
// server's clock with the correction beside it, the rollups count each
// installation on the two days it was used and no other, the user-count
// webhook carries the real day, and /metrics shows the skews.
func TestAgentsWithWrongClocksLoseNothing(t *testing.T) {
	const hookSecret = "clock-skew-test-webhook-secret-of-32b"
	tp := forwardtest.NewReceiver(t, []byte(hookSecret))
	fwd := filepath.Join(t.TempDir(), "forward.yaml")
	if err := os.WriteFile(fwd, fmt.Appendf(nil, "third_party:\n  url: %s/counts\n  secret_env: HOOK_SECRET\n  ca_file: %s\npoll_interval: 20ms\n",
		tp.URL, forwardtest.CAFile(t, tp.Server)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The server's clock is two days behind the wall clock: what counts
	// is that agents and server are compared with it, not with the wall.
	serverNow := func() time.Time { return time.Now().Add(-48 * time.Hour) }
	reg := prometheus.NewRegistry()
	b := sqliteBackend(t, t.TempDir())
	srv, _ := started(t, b, Config{Data: t.TempDir(), Now: serverNow, Registry: reg, ForwardConfig: fwd,
		Getenv: func(k string) string { return map[string]string{"HOOK_SECRET": hookSecret}[k] }})
	ca := writeCA(t, srv)
	ctx := context.Background()

	now := serverNow().UTC()
	today := now.Truncate(24 * time.Hour)
	usedOn := []time.Time{today.Add(-2*24*time.Hour + 10*time.Hour), today.Add(-24*time.Hour + 15*time.Hour)}
	devices := []struct {
		name string
		off  time.Duration
	}{
		{"30 hours ahead", 30 * time.Hour},
		{"a month ahead", 31 * 24 * time.Hour},
		{"3 days behind", -3 * 24 * time.Hour},
		{"right", 0},
	}
	ids := map[string]string{} // installation id → device
	for _, d := range devices {
		clock := &deviceClock{server: serverNow}
		a := openSkewAgent(t, clock)
		c, err := a.Consent()
		if err != nil {
			t.Fatal(err)
		}
		ids[c.InstallationID] = d.name
		for _, at := range usedOn {
			clock.set(at, d.off)
			if _, err := a.Collect(ctx); err != nil {
				t.Fatal(err)
			}
			if err := a.RecordTask(ctx, agent.Task{Type: agent.TaskUpgrade, Status: agent.TaskSuccess, Duration: time.Minute}); err != nil {
				t.Fatal(err)
			}
		}
		clock.set(time.Time{}, d.off) // uploads now, by the device's clock
		rep, err := a.Flush(ctx, agent.Upload{Server: srv.URL, CAFile: ca})
		if err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		st, err := a.Status()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Rejected != 0 || rep.Refused != 0 || rep.Accepted == 0 || st.Events != 0 || st.Dropped != 0 {
			t.Errorf("%s: flush %+v, outbox %+v", d.name, rep, st)
		}
	}

	// Every event on the day it happened, by the server's clock; the
	// correction is the device's offset, within the upload's time.
	recs, err := b.Stored.Read(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for _, r := range recs {
		d := ids[r.InstallationID]
		stored[d]++
		var off time.Duration
		for _, dv := range devices {
			if dv.name == d {
				off = dv.off
			}
		}
		// Recorded at one of the times of use, stored at it: the upload's
		// own time is all the correction may be off by.
		if r.Event.Time.Sub(usedOn[0]).Abs() > time.Minute && r.Event.Time.Sub(usedOn[1]).Abs() > time.Minute {
			t.Errorf("%s: %s event stored at %s, not at a time of use %v", d, r.Event.Type, r.Event.Time, usedOn)
		}
		if off == 0 && r.Event.ClockSkew != 0 || off != 0 && (r.Event.ClockSkew+off).Abs() > time.Minute {
			t.Errorf("%s: %s event stored with a correction of %s", d, r.Event.Type, r.Event.ClockSkew)
		}
	}
	for _, dv := range devices {
		// Per day: software, os, user_count and the task.
		if stored[dv.name] != 8 {
			t.Errorf("%s: %d events stored, want 8", dv.name, stored[dv.name])
		}
	}

	// Rollups: four installations active on each day of use, none else.
	if _, err := b.Updater(nil).Update(ctx); err != nil {
		t.Fatal(err)
	}
	cells, err := b.Rollups.Cells(ctx, rollup.Query{Views: []string{rollup.ViewActive}})
	if err != nil {
		t.Fatal(err)
	}
	active := map[string]int64{}
	for _, c := range cells {
		if c.Key.Dims == rollup.Dims("all", "all") {
			active[c.Key.Day] = c.Distinct()
		}
	}
	want := map[string]int64{usedOn[0].Format(time.DateOnly): 4, usedOn[1].Format(time.DateOnly): 4}
	if fmt.Sprint(active) != fmt.Sprint(want) {
		t.Errorf("active installations by day = %v, want %v", active, want)
	}

	// The user counts reach the third party with the day of use.
	deadline := time.Now().Add(10 * time.Second)
	for len(tp.Received()) < 8 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var counted []string
	for _, d := range tp.Received() {
		counted = append(counted, d.Day)
	}
	sort.Strings(counted)
	d0, d1 := usedOn[0].Format(time.DateOnly), usedOn[1].Format(time.DateOnly)
	if fmt.Sprint(counted) != fmt.Sprint([]string{d0, d0, d0, d0, d1, d1, d1, d1}) {
		t.Errorf("user counts forwarded for days %v, want four on %s and four on %s", counted, d0, d1)
	}

	// The histogram: two clocks ahead (30 h: between 1 and 3 days; a
	// month: between 30 and 90), two behind (3 days, and right: under a
	// second, since sent_at is stamped when the request is made).
	counts := skewHistogram(t, reg)
	for _, c := range []struct {
		dir   string
		le    float64
		count uint64
	}{
		{"ahead", 86400, 0}, {"ahead", 3 * 86400, 1}, {"ahead", 30 * 86400, 1}, {"ahead", 90 * 86400, 2},
		{"behind", 60, 1}, {"behind", 86400, 1}, {"behind", 7 * 86400, 2},
	} {
		if got := counts[c.dir][c.le]; got != c.count {
			t.Errorf("skew histogram %s le=%g: %d batches, want %d", c.dir, c.le, got, c.count)
		}
	}
}

// skewHistogram returns the cumulative bucket counts of the skew
// histogram by direction and upper bound.
func skewHistogram(t *testing.T, reg *prometheus.Registry) map[string]map[float64]uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[float64]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "provision_batch_clock_skew_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			dir := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "direction" {
					dir = l.GetValue()
				}
			}
			out[dir] = map[float64]uint64{}
			for _, b := range m.GetHistogram().GetBucket() {
				out[dir][b.GetUpperBound()] = b.GetCumulativeCount()
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("/metrics has no provision_batch_clock_skew_seconds")
	}
	return out
}

// A device whose clock jumped years ahead after it recorded its events
// sends a sent_at the server does not correct: the batch is refused with
// bad_sent_at, and the agent keeps it instead of dropping it. Once the
// clock is right again the same batch is delivered and stored on its day.
func TestSentAtBeyondTheCorrectionKeepsTheBatch(t *testing.T) {
	serverNow := time.Now
	b := sqliteBackend(t, t.TempDir())
	srv, _ := started(t, b, Config{Data: t.TempDir()})
	ca := writeCA(t, srv)
	ctx := context.Background()

	clock := &deviceClock{server: serverNow}
	a := openSkewAgent(t, clock)
	recorded := serverNow().Add(-2 * time.Hour)
	clock.set(recorded, 0)
	if err := a.RecordTask(ctx, agent.Task{Type: agent.TaskInstall, Status: agent.TaskSuccess, Duration: time.Minute}); err != nil {
		t.Fatal(err)
	}
	clock.set(time.Time{}, 5*365*24*time.Hour)
	up := agent.Upload{Server: srv.URL, CAFile: ca}
	rep, err := a.Flush(ctx, up)
	var refusal *wire.Error
	if !errors.As(err, &refusal) || refusal.Code != wire.CodeBadSentAt {
		t.Fatalf("flush with the clock 5 years ahead: %v, want the server's %s", err, wire.CodeBadSentAt)
	}
	st, serr := a.Status()
	if serr != nil {
		t.Fatal(serr)
	}
	if rep.Refused != 0 || st.Events != 1 || !st.Inflight {
		t.Errorf("after the refusal: flush %+v, outbox %+v; want the batch kept in flight", rep, st)
	}
	if sent, err := a.Sent(10); err != nil || len(sent) != 0 {
		t.Errorf("sent log %+v (%v), want nothing recorded as sent or refused", sent, err)
	}
	if recs, err := b.Stored.Read(ctx, 0, 10); err != nil || len(recs) != 0 {
		t.Fatalf("stored %d events (%v)", len(recs), err)
	}

	clock.set(time.Time{}, 0)
	rep, err = a.Flush(ctx, up)
	if err != nil || rep.Accepted != 1 || rep.Rejected != 0 {
		t.Fatalf("flush with the clock right again: %+v, %v", rep, err)
	}
	recs, err := b.Stored.Read(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Event.ClockSkew != 0 || recs[0].Event.Time.Sub(recorded).Abs() > time.Second {
		t.Errorf("stored %+v, want the event at %s uncorrected", recs, recorded)
	}
}
