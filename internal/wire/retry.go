package wire

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// ErrWaitTooLong means the server asked for a longer wait than the
// sender's policy accepts; the request is still worth sending later.
var ErrWaitTooLong = errors.New("server asked for a longer wait than this sender accepts")

// Policy is how every sender retries: exponential waits with jitter (so
// that a fleet refused at the same moment does not come back at the same
// moment), never shorter than the server's Retry-After, bounded in
// attempts and in time. Permanent errors (IsRetryable) end it at once.
type Policy struct {
	Initial     time.Duration // the first wait before jitter; default 1 s
	Max         time.Duration // the largest wait before jitter; default 5 min
	MaxAttempts int           // attempts in all, the first included; 0: unbounded
	MaxElapsed  time.Duration // no new attempt after this long; 0: unbounded
	// MaxWait is the longest single wait accepted. A server asking for
	// more ends the retrying with ErrWaitTooLong (wrapping its answer),
	// rather than being called again before it said it would be ready.
	// Default MaxRetryAfter.
	MaxWait time.Duration
	// Notify, when set, is told of each failed attempt (1-based) that
	// will be retried and of the wait before the next.
	Notify func(attempt int, wait time.Duration, err error)
}

// DefaultPolicy is the policy of fields left zero.
var DefaultPolicy = Policy{Initial: time.Second, Max: 5 * time.Minute, MaxWait: MaxRetryAfter}

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = DefaultPolicy.Initial
	}
	if p.Max <= 0 {
		p.Max = DefaultPolicy.Max
	}
	p.Max = max(p.Max, p.Initial)
	if p.MaxWait <= 0 {
		p.MaxWait = DefaultPolicy.MaxWait
	}
	return p
}

// Retry calls op until it succeeds, fails permanently, or the policy's
// bounds are reached, and returns op's last result and error (or ctx's,
// when it ends during a wait).
func Retry[T any](ctx context.Context, p Policy, op func() (T, error)) (T, error) {
	p = p.withDefaults()
	b := &floorBackOff{exp: p.exponential()}
	attempt := 0
	opts := []backoff.RetryOption{
		backoff.WithBackOff(b),
		backoff.WithMaxElapsedTime(p.MaxElapsed),
		backoff.WithNotify(func(err error, wait time.Duration) {
			if p.Notify != nil {
				p.Notify(attempt, wait, err)
			}
		}),
	}
	if p.MaxAttempts > 0 {
		opts = append(opts, backoff.WithMaxTries(uint(p.MaxAttempts)))
	}
	v, err := backoff.Retry(ctx, func() (T, error) {
		attempt++
		v, err := op()
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil || !IsRetryable(err) {
			return v, backoff.Permanent(err)
		}
		b.floor = RetryAfter(err)
		if b.floor > p.MaxWait {
			return v, backoff.Permanent(fmt.Errorf("%w (%s): %w", ErrWaitTooLong, b.floor, err))
		}
		return v, err
	}, opts...)
	// The library unwraps a permanent error except on the last attempt.
	if pe, ok := err.(*backoff.PermanentError); ok {
		err = pe.Unwrap()
	}
	return v, err
}

// floorBackOff is the library's exponential backoff with the server's
// Retry-After as a floor. backoff.RetryAfterError would replace the wait
// and the error; this keeps the jitter above the floor and the answer.
type floorBackOff struct {
	exp   *backoff.ExponentialBackOff
	floor time.Duration
}

func (f *floorBackOff) NextBackOff() time.Duration {
	d := f.exp.NextBackOff()
	if d == backoff.Stop {
		return d
	}
	return max(d, f.floor)
}

func (f *floorBackOff) Reset() { f.exp.Reset() }
