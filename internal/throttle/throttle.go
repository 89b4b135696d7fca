// Package throttle limits how often one client, and all clients together,
// may try a secret: the dashboard's login and the operator API's bearer
// token. Each client address has a token bucket, and one global bucket
// bounds a guesser who spreads over many addresses.
package throttle

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rule is a token bucket: Burst attempts at once, then one per Every.
type Rule struct {
	Every time.Duration
	Burst int
}

// Defaults: an operator who mistypes the token a few times is not held up;
// a guesser gets 10 tries a minute per address and 60 a minute in all,
// which against a 128-bit token is nothing.
var (
	DefaultPerClient = Rule{Every: 6 * time.Second, Burst: 10}
	DefaultGlobal    = Rule{Every: time.Second, Burst: 60}
)

// maxClients bounds the per-address table; past it, idle buckets (full
// again) are dropped, and when none is idle new addresses share the
// global bucket only.
const maxClients = 10000

// Limiter counts attempts per client address and in all.
type Limiter struct {
	per    Rule
	global *rate.Limiter
	now    func() time.Time

	mu      sync.Mutex
	clients map[netip.Prefix]*rate.Limiter
}

// New returns a limiter with these rules; now nil means time.Now.
func New(per, global Rule, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{per: per, global: rate.NewLimiter(rate.Every(global.Every), global.Burst), now: now,
		clients: make(map[netip.Prefix]*rate.Limiter)}
}

// key groups an IPv6 client by its /64, the block one subscriber gets;
// an unknown address is one client.
func key(a netip.Addr, ok bool) netip.Prefix {
	if !ok {
		return netip.Prefix{}
	}
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

func (l *Limiter) client(k netip.Prefix, t time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[k]
	if c != nil {
		return c
	}
	if len(l.clients) >= maxClients {
		for k, c := range l.clients {
			if c.TokensAt(t) >= float64(l.per.Burst) {
				delete(l.clients, k)
			}
		}
		if len(l.clients) >= maxClients {
			return nil
		}
	}
	c = rate.NewLimiter(rate.Every(l.per.Every), l.per.Burst)
	l.clients[k] = c
	return c
}

// Take counts an attempt against the client's and the global bucket. When
// either is empty it takes nothing and returns how long to wait. Otherwise
// it returns refund, which the caller calls when the attempt succeeded: an
// operator who gets it right is never counted, while parallel guesses
// each pay before any is checked.
func (l *Limiter) Take(a netip.Addr, ok bool) (refund func(), wait time.Duration) {
	t := l.now()
	g := l.global.ReserveN(t, 1)
	var c *rate.Reservation
	if cl := l.client(key(a, ok), t); cl != nil {
		c = cl.ReserveN(t, 1)
	}
	wait = g.DelayFrom(t)
	if c != nil {
		wait = max(wait, c.DelayFrom(t))
	}
	refund = func() {
		g.CancelAt(t)
		if c != nil {
			c.CancelAt(t)
		}
	}
	if wait > 0 {
		refund()
		return nil, max(wait, time.Second)
	}
	return refund, 0
}

// SetRetryAfter writes the Retry-After header for a wait, in whole
// seconds rounded up.
func SetRetryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
}
