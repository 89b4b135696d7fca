package throttle

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestPerClientAndGlobal(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(Rule{Every: 10 * time.Second, Burst: 3}, Rule{Every: time.Second, Burst: 8}, func() time.Time { return now })
	a := netip.MustParseAddr("2001:db8:1:2::1")
	same64 := netip.MustParseAddr("2001:db8:1:2:ffff::9")
	other := netip.MustParseAddr("2001:db8:1:3::1")
	for range 3 {
		if _, wait := l.Take(a, true); wait > 0 {
			t.Fatal("refused within the burst")
		}
	}
	if _, wait := l.Take(same64, true); wait < 10*time.Second-time.Millisecond {
		t.Errorf("another address of the same /64 waits %v, want ~10s", wait)
	}
	refund, wait := l.Take(other, true)
	if wait > 0 {
		t.Fatal("another /64 refused")
	}
	refund() // a success gives its token back
	for range 3 {
		l.Take(other, true)
	}
	if _, wait := l.Take(other, true); wait == 0 {
		t.Error("a refunded client got more than its burst")
	}
	// 6 taken from the global bucket (3 + 3; the refunded and refused
	// ones gave theirs back); two more pass, then every address waits.
	for _, ip := range []string{"192.0.2.1", "192.0.2.2"} {
		if _, wait := l.Take(netip.MustParseAddr(ip), true); wait > 0 {
			t.Error("global refused before its burst")
		}
	}
	if _, wait := l.Take(netip.MustParseAddr("192.0.2.3"), true); wait == 0 {
		t.Error("global burst exceeded")
	}
	now = now.Add(time.Minute)
	if _, wait := l.Take(a, true); wait > 0 {
		t.Error("still refused after a minute")
	}
	w := httptest.NewRecorder()
	SetRetryAfter(w, 1500*time.Millisecond)
	if got := w.Header().Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q", got)
	}
}
