package rollup

import (
	"net/url"
	"testing"
	"time"

	"github.com/provisionhq/provision"
)

// TestAggregatorCaches checks that the day and hash the aggregator keeps
// from the previous record are those Day and a fresh hash give.
func TestAggregatorCaches(t *testing.T) {
	a := newAggregator([]byte("key"), 0)
	fresh := newAggregator([]byte("key"), 0)
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	recs := []provision.Record{
		{InstallationID: "a", ReceivedAt: at("2026-11-30T10:00:00Z"), Event: provision.Event{Time: at("2026-11-29T23:59:59.999Z")}},
		{InstallationID: "a", ReceivedAt: at("2026-11-30T10:00:00Z"), Event: provision.Event{Time: at("2026-11-30T00:00:00Z")}},
		{InstallationID: "a", ReceivedAt: at("2026-11-30T10:00:00Z")},
		{InstallationID: "b", Event: provision.Event{Time: at("2026-11-30T23:00:00-05:00")}},
		{InstallationID: "b", Event: provision.Event{Time: at("1969-12-31T23:59:59Z")}},
		{InstallationID: "a", Event: provision.Event{Time: at("1969-12-31T00:00:00Z")}},
		{InstallationID: "a", Event: provision.Event{Time: at("1970-01-01T00:00:00Z")}},
	}
	for i := range recs {
		r := &recs[i]
		if got, want := a.day(r.Event.Time, r.ReceivedAt), Day(r); got != want {
			t.Errorf("record %d: day %s, want %s", i, got, want)
		}
		fresh.hashed = false
		if got, want := a.installHash(r.InstallationID), fresh.installHash(r.InstallationID); got != want {
			t.Errorf("record %d: hash %x, want %x", i, got, want)
		}
	}
}

// TestDimsEscapes checks the fast path of Dims against url.QueryEscape for
// every byte.
func TestDimsEscapes(t *testing.T) {
	for c := range 256 {
		v := "a" + string(rune(c)) + "b"
		if c >= 0x80 {
			v = "a" + string([]byte{byte(c)}) + "b"
		}
		lead := v[1:] // the byte first, before any byte copied whole
		want := "k=" + url.QueryEscape(v) + "&" + url.QueryEscape(lead) + "=v"
		if got := Dims("k", v, lead, "v"); got != want {
			t.Errorf("byte %#x: Dims = %q, want %q", c, got, want)
		}
	}
	if got := Dims(); got != "" {
		t.Errorf("Dims() = %q", got)
	}
}
