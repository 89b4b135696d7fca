package forward

import (
	"cmp"
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

// DefaultRetryPolicy is used for fields left zero. The waits are the wire
// policy's defaults; the bounds are the forwarders' own.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 8, InitialBackoff: wire.DefaultPolicy.Initial, MaxBackoff: wire.DefaultPolicy.Max, MaxWait: 5 * time.Minute}

// withDefaults fills the bounds left zero; the waits left zero are filled
// by the wire policy.
func (p RetryPolicy) withDefaults() RetryPolicy {
	p.MaxAttempts = cmp.Or(max(p.MaxAttempts, 0), DefaultRetryPolicy.MaxAttempts)
	p.MaxWait = cmp.Or(max(p.MaxWait, 0), DefaultRetryPolicy.MaxWait)
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
