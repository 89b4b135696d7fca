package privacy_test

import (
	"context"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/privacy"
)

// byEventID indexes the log by event id.
func byEventID(recs []provision.Record) map[string]provision.Record {
	out := map[string]provision.Record{}
	for _, r := range recs {
		out[r.Event.ID] = r
	}
	return out
}

func TestRetentionFollowsTheManifestWithAFakeClock(t *testing.T) {
	forEachStore(t, testRetentionFollowsTheManifestWithAFakeClock)
}

func testRetentionFollowsTheManifestWithAFakeClock(t *testing.T, r *rig) {
	ctx := t.Context()
	id := newInstallationID()
	start := r.clock.Now()
	sw, tls := softwareEvent(start), tlsEvent(start)
	fresh := tlsEvent(start.Add(100 * day))
	r.appendBatch(t, id, provision.RegionEU, sw, tls)
	job := &privacy.Retention{Store: r.ps, Manifest: r.m, Clock: r.clock, Chunk: 2, Pause: time.Second}

	run := func() privacy.RetentionStats {
		t.Helper()
		st, err := job.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	// Day 100: everything is within retention.
	r.clock.Advance(100 * day)
	r.appendBatch(t, id, provision.RegionEU, fresh)
	run()
	got := byEventID(r.logRecords(t))
	if len(got) != 3 || got[tls.ID].Event.Fields["tls.certificate"] == nil {
		t.Fatalf("day 100: %d records, tls fields %v", len(got), got[tls.ID].Event.Fields)
	}

	// Day 181: the certificate and pin (180 days) are stripped from the
	// old TLS event; its count and location (395 days) stay; the fresh
	// TLS event and the software event are untouched.
	r.clock.Advance(81 * day)
	st := run()
	got = byEventID(r.logRecords(t))
	f := got[tls.ID].Event.Fields
	for _, item := range []string{"tls.certificate", "tls.spki_sha256"} {
		if _, ok := f[item]; ok {
			t.Errorf("day 181: %s kept past its 180 days", item)
		}
	}
	if f["event.count"] == nil || f["location.country"] != "DE" || got[tls.ID].Country != "DE" {
		t.Errorf("day 181: items within retention lost: %v", f)
	}
	if got[fresh.ID].Event.Fields["tls.certificate"] == nil {
		t.Error("day 181: the fresh TLS event lost its certificate")
	}
	if len(got[sw.ID].Event.Fields) != 4 {
		t.Errorf("day 181: software event changed: %v", got[sw.ID].Event.Fields)
	}
	if st.Stripped["tls_connection"] < 1 {
		t.Errorf("stripped = %v", st.Stripped)
	}

	// A late batch: an agent that was offline sends an event from day 0,
	// expired for its certificate. The next pass strips it although the
	// pass before already covered day 0.
	late := tlsEvent(start)
	r.appendBatch(t, id, provision.RegionEU, late)
	run()
	got = byEventID(r.logRecords(t))
	if _, ok := got[late.ID].Event.Fields["tls.certificate"]; ok {
		t.Error("a late event kept its certificate past retention")
	}
	if got[late.ID].Event.Fields["event.count"] == nil {
		t.Error("a late event lost its count")
	}

	// Day 396: the old events are past every item's retention and gone;
	// the fresh one (day 100) has lost its certificate at day 281.
	r.clock.Advance(215 * day)
	st = run()
	got = byEventID(r.logRecords(t))
	if _, ok := got[sw.ID]; ok {
		t.Error("day 396: software event kept past 395 days")
	}
	if _, ok := got[tls.ID]; ok {
		t.Error("day 396: tls event kept past 395 days")
	}
	if _, ok := got[late.ID]; ok {
		t.Error("day 396: late tls event kept past 395 days")
	}
	if len(got) != 1 || got[fresh.ID].Event.Fields["tls.certificate"] != nil {
		t.Errorf("day 396: want only the fresh event, stripped; got %v", got)
	}
	if st.Purged["software"] != 1 || st.Purged["tls_connection"] != 2 {
		t.Errorf("purged = %v", st.Purged)
	}
	if r.clock.Sleeps() == 0 {
		t.Error("the job never paused between chunks")
	}
}

func TestRetentionWorksInBoundedChunks(t *testing.T) {
	forEachStore(t, testRetentionWorksInBoundedChunks)
}

func testRetentionWorksInBoundedChunks(t *testing.T, r *rig) {
	ctx := t.Context()
	start := r.clock.Now()
	for range 5 {
		evs := make([]provision.Event, 0, 10)
		for range 10 {
			evs = append(evs, softwareEvent(start))
		}
		r.appendBatch(t, newInstallationID(), provision.RegionEU, evs...)
	}
	r.clock.Advance(400 * day)
	job := &privacy.Retention{Store: r.ps, Manifest: r.m, Clock: r.clock, Chunk: 8, Pause: 50 * time.Millisecond}
	st, err := job.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Purged["software"] != 50 {
		t.Fatalf("purged %v", st.Purged)
	}
	if len(r.logRecords(t)) != 0 {
		t.Error("events left")
	}
	// 50 events in chunks of 8 is at least 7 transactions, with a pause
	// before every one but the first.
	if st.Chunks < 7 {
		t.Errorf("%d chunks for 50 events of at most 8", st.Chunks)
	}
	if got := r.clock.Sleeps(); got != st.Chunks-1 {
		t.Errorf("%d pauses for %d chunks", got, st.Chunks)
	}
}

func TestRetentionRunStopsWithItsContext(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	job := &privacy.Retention{Store: r.ps, Manifest: r.m, Clock: r.clock}
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
