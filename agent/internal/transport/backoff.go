package transport

import (
	"math/rand/v2"
	"time"
)

// Backoff computes waits between attempts: exponential with full jitter
// (a random wait between 0 and the exponential bound), so that a fleet
// refused at the same moment does not come back at the same moment, and
// never shorter than what the server asked for in Retry-After.
type Backoff struct {
	Base time.Duration  // bound of the first wait; default 1 s
	Max  time.Duration  // largest bound; default 5 min
	Rand func() float64 // in [0,1); default math/rand/v2
}

// Delay is the wait before attempt n (n = 1 is the first retry).
func (b Backoff) Delay(n int, retryAfter time.Duration) time.Duration {
	base, ceiling := b.Base, b.Max
	if base <= 0 {
		base = time.Second
	}
	if ceiling <= 0 {
		ceiling = 5 * time.Minute
	}
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	bound := ceiling
	if n < 1 {
		n = 1
	}
	if n < 31 {
		if d := base << (n - 1); d > 0 && d < ceiling {
			bound = d
		}
	}
	d := time.Duration(r() * float64(bound))
	return max(d, retryAfter)
}
