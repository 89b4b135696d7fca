package ingest

import (
	"hash/maphash"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/provisionhq/provision/internal/wire"
)

// clientLimiter is one token bucket per client, for one route. Clients are
// told apart by their address after the trusted-proxy rule, IPv6 ones by
// their /64 (one host's share of a network). The address itself is never
// kept: buckets are found by a keyed hash of it whose key lives only in
// this process. At most max buckets are kept, the least recently used one
// is forgotten first (a forgotten client starts again with a full bucket,
// which is what an idle one has anyway).
type clientLimiter struct {
	limit rate.Limit
	burst int
	max   int
	seed  maphash.Seed

	mu sync.Mutex
	// last is the latest time seen. Callers read the clock before they
	// take mu, so times can arrive out of order; rate.Limiter counts a
	// step back and forth as time passed twice and would grant tokens
	// that never accrued, so no bucket is ever shown an earlier time.
	last    time.Time
	buckets map[uint64]int32 // key → index in entries
	entries []bucket
	head    int32 // most recently used, -1 when empty
	tail    int32 // least recently used
}

type bucket struct {
	key        uint64
	lim        *rate.Limiter
	prev, next int32
}

func newClientLimiter(limit rate.Limit, burst, max int) *clientLimiter {
	return &clientLimiter{limit: limit, burst: burst, max: max, seed: maphash.MakeSeed(),
		buckets: make(map[uint64]int32), head: -1, tail: -1}
}

// allow takes a token for addr, or says how long until one is there.
func (c *clientLimiter) allow(addr netip.Addr, now time.Time) (bool, time.Duration) {
	if c == nil || c.limit == rate.Inf {
		return true, 0
	}
	if addr.Is6() {
		addr = netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	key := maphash.Comparable(c.seed, addr)

	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Before(c.last) {
		now = c.last
	} else {
		c.last = now
	}
	i, ok := c.buckets[key]
	if ok {
		c.unlink(i)
	} else {
		i = c.slot(key)
	}
	c.pushFront(i)
	lim := c.entries[i].lim
	if lim.AllowN(now, 1) {
		return true, 0
	}
	wait := time.Duration((1 - lim.TokensAt(now)) / float64(c.limit) * float64(time.Second))
	return false, wait
}

// slot returns a fresh bucket for key, reusing the least recently used one
// when the table is full.
func (c *clientLimiter) slot(key uint64) int32 {
	var i int32
	if len(c.entries) < c.max {
		c.entries = append(c.entries, bucket{})
		i = int32(len(c.entries) - 1)
	} else {
		i = c.tail
		c.unlink(i)
		delete(c.buckets, c.entries[i].key)
	}
	e := &c.entries[i]
	e.key = key
	e.lim = rate.NewLimiter(c.limit, c.burst)
	c.buckets[key] = i
	return i
}

func (c *clientLimiter) unlink(i int32) {
	e := &c.entries[i]
	if e.prev >= 0 {
		c.entries[e.prev].next = e.next
	} else {
		c.head = e.next
	}
	if e.next >= 0 {
		c.entries[e.next].prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (c *clientLimiter) pushFront(i int32) {
	e := &c.entries[i]
	e.prev, e.next = -1, c.head
	if c.head >= 0 {
		c.entries[c.head].prev = i
	}
	c.head = i
	if c.tail < 0 {
		c.tail = i
	}
}

// size is the number of clients remembered.
func (c *clientLimiter) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buckets)
}

// limitClients answers 429 rate_limited with Retry-After to a client over
// its rate, before anything of the request is read. Clients on loopback
// (the host itself: its health checks and benchmarks) and clients whose
// address is unknown share no bucket with anyone: the former are not
// limited, the latter share one bucket, so that a proxy that forgets the
// header cannot open a way around the limit.
func (s *Server) limitClients(l *clientLimiter, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, ok := s.deps.ClientAddr(r)
		if ok && addr.IsLoopback() {
			h.ServeHTTP(w, r)
			return
		}
		if !ok {
			addr = netip.Addr{}
		}
		if allowed, wait := l.allow(addr, s.deps.Now()); !allowed {
			after := int(math.Ceil(wait.Seconds()))
			s.shed(w, retryable(http.StatusTooManyRequests, wire.CodeRateLimited, "too many requests from this client; retry after the delay", max(after, 1)))
			return
		}
		h.ServeHTTP(w, r)
	})
}
