package forward_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/manifest"
)

// An agent offline for days sends its backlog at once: each installation is
// counted once per day it was used, on that day, and Google Analytics gets
// only the days inside its 72-hour window, stamped with the day's time.
func TestOfflineBacklogCountedOnTheDaysOfUse(t *testing.T) {
	m := manifest.Reference()
	received := day1.Add(3*24*time.Hour + 10*time.Hour) // 2026-11-29 19:30
	r := newRig(t, m, received)
	backlog := func(inst string, days int) []provision.Event {
		var evs []provision.Event
		for d := range days {
			for _, h := range []time.Duration{0, 3 * time.Hour} { // two counts on each day
				at := day1.Add(time.Duration(4-days+d)*24*time.Hour + h)
				evs = append(evs, userCount(fmt.Sprintf("%s-%d-%d", inst[len(inst)-2:], d, h/time.Hour), at, nil))
			}
		}
		return evs
	}
	submit(t, m, r.log, installation(1), "eu", received, backlog(installation(1), 4)...) // 26th to 29th
	submit(t, m, r.log, installation(2), "br", received, backlog(installation(2), 2)...) // 28th and 29th
	r.drain(t)
	r.drain(t)

	got := map[string]int{}
	for _, d := range r.tp.Received() {
		got[d.Fields["installation.id"].(string)[34:]+" "+d.Day]++
	}
	want := map[string]int{
		"01 2026-11-26": 1, "01 2026-11-27": 1, "01 2026-11-28": 1, "01 2026-11-29": 1,
		"02 2026-11-28": 1, "02 2026-11-29": 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("third party counts by installation and day of use = %v, want %v", got, want)
	}

	// 26 November is 82 hours back: beyond Google Analytics' window.
	gaDays := map[string]int{}
	for _, req := range r.ga.Accepted() {
		ts := time.UnixMicro(req.TimestampMicros).UTC()
		if ts.Hour() != 9 || ts.Minute() != 30 {
			t.Errorf("timestamp %v is not the first count's time on its day", ts)
		}
		gaDays[req.ClientID[34:]+" "+ts.Format("2006-01-02")]++
	}
	wantGA := map[string]int{"01 2026-11-27": 1, "01 2026-11-28": 1, "01 2026-11-29": 1, "02 2026-11-28": 1, "02 2026-11-29": 1}
	if fmt.Sprint(gaDays) != fmt.Sprint(wantGA) {
		t.Errorf("google analytics counts = %v, want %v", gaDays, wantGA)
	}
	if v := r.ga.Violations(); len(v) > 0 {
		t.Errorf("GA rules broken: %v", v)
	}
	if n := metricSkipped(t, r, "google_analytics", "too_old"); n != 2 {
		t.Errorf("too_old for google_analytics = %v, want the 2 counts of 26 November", n)
	}
	if n := metricSkipped(t, r, "third_party", "too_old"); n != 0 {
		t.Errorf("too_old for third_party = %v: the webhook has no window", n)
	}
	if n := metricValue(t, r.reg, "provision_forward_dead_letters", "google_analytics"); n != 0 {
		t.Errorf("%v dead letters: a count too old is not a failure", n)
	}
}

func metricSkipped(t *testing.T, r *rig, recipient, reason string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "provision_forward_skipped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["recipient"] == recipient && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestGA4EndpointByRegion(t *testing.T) {
	byRegion, err := forward.NewGA4(forward.GA4Config{MeasurementID: "G-1", APISecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	for region, want := range map[string]string{"eu": forward.GA4EndpointRegion1, "uk": forward.GA4EndpointRegion1, "br": forward.GA4EndpointGlobal, "us-ca": forward.GA4EndpointGlobal} {
		if got := byRegion.Endpoint(region); got != want {
			t.Errorf("default endpoint for %s = %s, want %s", region, got, want)
		}
	}
	fixed, err := forward.NewGA4(forward.GA4Config{MeasurementID: "G-1", APISecret: "s", Endpoint: forward.GA4EndpointGlobal})
	if err != nil {
		t.Fatal(err)
	}
	if got := fixed.Endpoint("eu"); got != forward.GA4EndpointGlobal {
		t.Errorf("a configured endpoint is for every region; eu went to %s", got)
	}
	for setting, eu := range map[string]string{"": forward.GA4EndpointRegion1, "by_region": forward.GA4EndpointRegion1, "global": forward.GA4EndpointGlobal, "region1": forward.GA4EndpointRegion1} {
		c, err := forward.ParseConfig(fmt.Appendf(nil, "google_analytics: {measurement_id: G-1, api_secret_env: S, endpoint: %q}\n", setting))
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Senders(func(string) string { return "secret" })
		if err != nil {
			t.Fatal(err)
		}
		if got := s[0].(*forward.GA4).Endpoint("eu"); got != eu {
			t.Errorf("endpoint %q: eu goes to %s, want %s", setting, got, eu)
		}
		if got := s[0].(*forward.GA4).Endpoint("br"); setting != "region1" && got != forward.GA4EndpointGlobal {
			t.Errorf("endpoint %q: br goes to %s", setting, got)
		}
	}
}

// A count dead-lettered during a Google Analytics outage that outlasts the
// 72-hour window is dropped at redrive and counted as too_old, not sent
// with a timestamp Google would refuse.
func TestRedriveAfterTheWindowCountsTooOld(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(time.Hour))
	r.ga.Fail(503, -1, 0)
	submit(t, m, r.log, installation(1), "eu", day1, userCount("a", day1, nil))
	r.drain(t)
	if n, _ := r.state.CountDeadLetters(context.Background(), "google_analytics"); n != 1 {
		t.Fatalf("%d dead letters after the outage, want 1", n)
	}
	r.ga.Recover()
	r.now = day1.Add(80 * time.Hour)
	delivered, err := r.gaFwd.Redrive(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if delivered != 0 || len(r.ga.Accepted()) != 0 {
		t.Errorf("delivered %d counts 80 hours after their day of use", delivered)
	}
	if n := metricSkipped(t, r, "google_analytics", "too_old"); n != 1 {
		t.Errorf("too_old = %v, want 1", n)
	}
	if n, _ := r.state.CountDeadLetters(context.Background(), "google_analytics"); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
}
