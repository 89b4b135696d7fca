package forward

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy bounds how a delivery is retried: exponential backoff with
// full jitter, at most MaxAttempts attempts, never waiting longer than
// MaxBackoff — not even when the recipient's Retry-After asks for more, so
// a forwarder is never parked for hours by one answer.
type RetryPolicy struct {
	MaxAttempts    int           `yaml:"max_attempts"`
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
}

// DefaultRetryPolicy is used for fields left zero.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 8, InitialBackoff: time.Second, MaxBackoff: 5 * time.Minute}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = DefaultRetryPolicy.InitialBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultRetryPolicy.MaxBackoff
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = p.InitialBackoff
	}
	return p
}

// Backoff is the wait before the attempt after the given one (1-based). A
// Retry-After from the recipient is honoured as a floor, capped by
// MaxBackoff; otherwise the wait is uniform in [0, min(Max, Initial·2^(n-1))].
func (p RetryPolicy) Backoff(attempt int, retryAfter time.Duration) time.Duration {
	p = p.withDefaults()
	if retryAfter > 0 {
		return min(retryAfter, p.MaxBackoff)
	}
	ceiling := p.InitialBackoff
	for i := 1; i < attempt && ceiling < p.MaxBackoff; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, p.MaxBackoff)
	// Full jitter spreads the retries of many forwarders after a shared outage.
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// RetryableError is a failure a later attempt may overcome: a 429 or 5xx
// answer, or a network error.
type RetryableError struct {
	Status     int           // HTTP status, 0 for a network error
	RetryAfter time.Duration // what the recipient asked for, 0 if nothing
	Err        error
}

func (e *RetryableError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("retryable: HTTP %d: %v", e.Status, e.Err)
	}
	return fmt.Sprintf("retryable: %v", e.Err)
}

func (e *RetryableError) Unwrap() error { return e.Err }

// maxRetryAfter bounds what a Retry-After header may ask for.
const maxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
// It returns 0 for an absent or malformed value and caps it at a day.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 64 {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d <= 0 {
			return 0
		}
		return min(d, maxRetryAfter)
	}
	return 0
}

// classify turns an HTTP answer into nil, a *RetryableError or a permanent error.
func classify(resp *http.Response, now time.Time) error {
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return &RetryableError{
			Status:     resp.StatusCode,
			RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), now),
			Err:        fmt.Errorf("%s", http.StatusText(resp.StatusCode)),
		}
	default:
		return fmt.Errorf("permanent: HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
}
