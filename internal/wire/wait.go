package wire

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Wait is the policy's wait after the attempt-th failure (1-based) with
// err, for retries that outlive a process (a queue in a store keeps the
// attempt count and the time of the next attempt): the same exponential
// wait with jitter that Retry uses, never shorter than the server's
// Retry-After, never longer than MaxWait. MaxAttempts and MaxElapsed are
// the queue's to apply.
func (p Policy) Wait(attempt int, err error) time.Duration {
	p = p.withDefaults()
	exp := p.exponential()
	d := p.Initial
	// Bounded: past 64 doublings every wait is Max anyway.
	for range min(max(attempt, 1), 64) {
		d = exp.NextBackOff()
	}
	return min(max(d, RetryAfter(err)), max(p.MaxWait, p.Max))
}

// exponential is the backoff both Retry and Wait follow.
func (p Policy) exponential() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     p.Initial,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          2,
		MaxInterval:         p.Max,
	}
}
