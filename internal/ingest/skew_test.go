package ingest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/wire"
)

// serverNow is the server's clock in these tests, injected.
var serverNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func atServerNow(d *ingest.Deps) { d.Now = func() time.Time { return serverNow } }

// A batch from a device whose clock is off by hours, a month or days is
// placed on the server's clock: every event's time moves by receipt time
// minus sent_at and the correction is stored with it. A clock within the
// tolerance is left alone.
func TestClockSkewIsCorrected(t *testing.T) {
	e := newEnv(t, atServerNow)
	for _, tc := range []struct {
		name      string
		device    time.Duration // the device's clock minus the server's
		corrected bool
	}{
		{"30 hours ahead", 30 * time.Hour, true},
		{"a month ahead", 31 * 24 * time.Hour, true},
		{"3 days behind", -3 * 24 * time.Hour, true},
		{"right", 0, false},
		{"2 minutes ahead, within the tolerance", 2 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.batch(4)
			real := map[string]time.Time{}
			for i := range b.Events {
				// Recorded 1 to 40 hours ago by the server's clock.
				at := serverNow.Add(-time.Duration(1+13*i) * time.Hour)
				real[b.Events[i].ID] = at
				b.Events[i].Time = at.Add(tc.device)
			}
			b.SentAt = serverNow.Add(tc.device)
			r := e.post(ingesttest.JSON(b), "")
			if r.status != 200 {
				t.Fatal(r.status, string(r.body))
			}
			if resp := r.response(t); resp.Accepted != 4 || len(resp.Rejected) != 0 {
				t.Fatalf("answer %s", r.body)
			}
			stored := 0
			for _, rec := range e.records() {
				want, ok := real[rec.Event.ID]
				if !ok {
					continue
				}
				stored++
				wantSkew := -tc.device
				if !tc.corrected {
					want, wantSkew = want.Add(tc.device), 0
				}
				if !rec.Event.Time.Equal(want) || rec.Event.ClockSkew != wantSkew {
					t.Errorf("event %s stored at %s with skew %s, want %s with %s", rec.Event.ID, rec.Event.Time, rec.Event.ClockSkew, want, wantSkew)
				}
			}
			if stored != 4 {
				t.Errorf("%d events stored, want 4", stored)
			}
		})
	}
	m := string(e.get("/metrics").body)
	for _, want := range []string{
		`provision_batch_clock_skew_seconds_count{direction="ahead"} 3`,
		`provision_batch_clock_skew_seconds_count{direction="behind"} 2`,
		// 30 hours is over a day and within 3 days; a month within 90 days.
		`provision_batch_clock_skew_seconds_bucket{direction="ahead",le="86400"} 1`,
		`provision_batch_clock_skew_seconds_bucket{direction="ahead",le="259200"} 2`,
		`provision_batch_clock_skew_seconds_bucket{direction="ahead",le="2.592e+06"} 2`,
		`provision_batch_clock_skew_seconds_bucket{direction="ahead",le="7.776e+06"} 3`,
		`provision_batch_clock_skew_seconds_bucket{direction="behind",le="1"} 1`,
		`provision_batch_clock_skew_seconds_bucket{direction="behind",le="259200"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// The time window applies to the corrected times, and its rejections keep
// the indexes of the events as sent among the other rejections.
func TestCorrectedTimesMeetTheWindow(t *testing.T) {
	e := newEnv(t, atServerNow)
	device := 31 * 24 * time.Hour
	b := e.batch(6)
	for i := range b.Events {
		b.Events[i].Time = serverNow.Add(device - time.Hour)
	}
	b.Events[1].Fields["user.email"] = "a@example.com"                  // undeclared
	b.Events[3].Time = serverNow.Add(device - 500*24*time.Hour)         // too old, corrected or not
	b.Events[4].Time = serverNow.Add(device + 2*24*time.Hour)           // two days after it was sent
	b.Events[5].Time = serverNow.Add(device + 23*time.Hour).Truncate(0) // within the future allowed
	b.SentAt = serverNow.Add(device)
	r := e.post(ingesttest.JSON(b), "")
	if r.status != 200 {
		t.Fatal(r.status, string(r.body))
	}
	resp := r.response(t)
	got := map[int]string{}
	for _, rej := range resp.Rejected {
		got[rej.Index] = rej.Code
	}
	want := map[int]string{1: "undeclared_field", 3: wire.RejectBadTime, 4: wire.RejectBadTime}
	if fmt.Sprint(got) != fmt.Sprint(want) || resp.Accepted != 3 {
		t.Errorf("rejections = %v, accepted %d; want %v and 3", got, resp.Accepted, want)
	}
	var ids []string
	for _, rec := range e.records() {
		ids = append(ids, rec.Event.ID)
		if rec.Event.ClockSkew != -device || rec.Event.Time.After(serverNow.Add(24*time.Hour)) {
			t.Errorf("event %s stored at %s with skew %s", rec.Event.ID, rec.Event.Time, rec.Event.ClockSkew)
		}
	}
	if wantIDs := fmt.Sprint([]string{b.Events[0].ID, b.Events[2].ID, b.Events[5].ID}); fmt.Sprint(ids) != wantIDs {
		t.Errorf("stored %v, want %v", ids, wantIDs)
	}
}

// A sent_at further from the server's clock than MaxSentAtSkew is not a
// clock the server corrects: the batch is refused as a whole, with a code
// that says why, and nothing is stored.
func TestSentAtBeyondTheCorrectionIsRefused(t *testing.T) {
	e := newEnv(t, atServerNow)
	for _, off := range []time.Duration{4 * 365 * 24 * time.Hour, -4 * 365 * 24 * time.Hour} {
		b := e.batch(2)
		b.SentAt = serverNow.Add(off)
		for i := range b.Events {
			b.Events[i].Time = b.SentAt.Add(-time.Hour)
		}
		r := e.post(ingesttest.JSON(b), "")
		if r.status != 400 || r.errorCode() != wire.CodeBadSentAt {
			t.Errorf("sent_at %s off: %d %s, want 400 %s", off, r.status, r.body, wire.CodeBadSentAt)
		}
	}
	if recs := e.records(); len(recs) != 0 {
		t.Errorf("stored %d events", len(recs))
	}
}

func TestLimitsRefuseNegativeClockSkewTolerance(t *testing.T) {
	l := ingest.DefaultLimits()
	l.ClockSkewTolerance = -time.Second
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "clock_skew_tolerance") {
		t.Errorf("Validate = %v, want an error naming clock_skew_tolerance", err)
	}
}
