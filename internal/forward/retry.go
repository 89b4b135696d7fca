package forward

import (
	"net/http"
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

// RetryPolicy bounds how a delivery is retried, with the wire's one
// policy: exponential waits with jitter from InitialBackoff to MaxBackoff,
// at most MaxAttempts attempts, never sooner than the recipient's
// Retry-After. A recipient asking for more than MaxWait is not called
// again in this round: the count is dead-lettered as retryable, so a
// forwarder is never parked for hours by one answer and the count is
// redriven later.
type RetryPolicy struct {
	MaxAttempts    int           `yaml:"max_attempts"`
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
	MaxWait        time.Duration `yaml:"max_wait"`
}

// DefaultRetryPolicy is used for fields left zero.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 8, InitialBackoff: time.Second, MaxBackoff: 5 * time.Minute, MaxWait: 5 * time.Minute}

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
	if p.MaxWait <= 0 {
		p.MaxWait = DefaultRetryPolicy.MaxWait
	}
	return p
}

func (p RetryPolicy) wire(notify func(attempt int, wait time.Duration, err error)) wire.Policy {
	return wire.Policy{Initial: p.InitialBackoff, Max: p.MaxBackoff, MaxAttempts: p.MaxAttempts, MaxWait: p.MaxWait, Notify: notify}
}

// classify turns a recipient's answer into nil or a *wire.Error, which
// is retryable for 408, 429 and 5xx. The body is left to the caller.
func classify(resp *http.Response, now time.Time) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return wire.StatusError(resp.StatusCode, resp.Header.Get("Retry-After"), now)
}
