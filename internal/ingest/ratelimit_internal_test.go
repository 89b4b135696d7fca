package ingest

import (
	"net/netip"
	"testing"
	"time"
)

// TestClientLimiterIsBounded: at most max clients are remembered, the
// least recently seen is forgotten first, and a forgotten client starts
// with a full bucket.
func TestClientLimiterIsBounded(t *testing.T) {
	c := newClientLimiter(1, 2, 3)
	now := time.Unix(1e9, 0)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	for i := range 2 {
		if ok, _ := c.allow(addr(1), now); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	if ok, wait := c.allow(addr(1), now); ok || wait != time.Second {
		t.Fatalf("over the burst: %v, wait %v", ok, wait)
	}
	c.allow(addr(2), now)
	c.allow(addr(3), now)
	c.allow(addr(1), now) // 1 is the most recent again; 2 is the oldest
	c.allow(addr(4), now) // forgets 2
	if n := c.size(); n != 3 {
		t.Fatalf("%d clients remembered, want 3", n)
	}
	if ok, _ := c.allow(addr(1), now); ok {
		t.Errorf("client 1 was forgotten instead of the least recent")
	}
	for i := range 100 {
		c.allow(addr(10+i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := c.size(); n != 3 {
		t.Errorf("%d clients remembered after 100 new ones, want 3", n)
	}
}
