package forward

import (
	"context"
	"fmt"
	"time"

	"github.com/provisionhq/provision"
)

// Status is a forwarder's state as /readyz details and `provision forward
// status` show it.
type Status struct {
	Recipient   string    `json:"recipient"`
	Consumer    string    `json:"consumer"`
	Checkpoint  int64     `json:"checkpoint"`
	Head        int64     `json:"head"`
	Lag         int64     `json:"lag"`
	DeadLetters int       `json:"dead_letters"`
	Sent        uint64    `json:"sent"`    // since the process started
	Failed      uint64    `json:"failed"`  // since the process started
	Retried     uint64    `json:"retried"` // since the process started
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Healthy     bool      `json:"healthy"`
	Problems    []string  `json:"problems,omitempty"`
}

// Status reports the forwarder's position, lag, counters and health. It is
// unhealthy when it lags more than MaxLag records, when its last attempt
// failed and nothing succeeded since, or when the store cannot be read.
func (f *Forwarder) Status(ctx context.Context) Status {
	s := Inspect(ctx, f.recipient, f.name, f.o.MaxLag, f.o.Log, f.o.Checkpoints, f.o.State)
	f.mu.Lock()
	s.Sent, s.Failed, s.Retried = f.sent, f.failed, f.retried
	s.LastSuccess, s.LastError, s.LastErrorAt = f.lastSuccess, f.lastError, f.lastErrorAt
	f.mu.Unlock()
	if !s.LastErrorAt.IsZero() && s.LastErrorAt.After(s.LastSuccess) {
		s.Problems = append(s.Problems, "last attempt failed: "+s.LastError)
	}
	s.Healthy = len(s.Problems) == 0
	return s
}

// Inspect reads a forwarder's persistent state — checkpoint, log head, dead
// letters — without a running forwarder, for `provision forward status`.
func Inspect(ctx context.Context, recipient, consumer string, maxLag int64, log provision.Log, cps provision.Checkpoints, st State) Status {
	s := Status{Recipient: recipient, Consumer: consumer}
	var err error
	if s.Checkpoint, err = cps.Checkpoint(ctx, consumer); err != nil {
		s.Problems = append(s.Problems, fmt.Sprintf("checkpoint: %v", err))
	}
	if s.Head, err = log.Head(ctx); err != nil {
		s.Problems = append(s.Problems, fmt.Sprintf("log head: %v", err))
	}
	s.Lag = max(s.Head-s.Checkpoint, 0)
	if maxLag > 0 && s.Lag > maxLag {
		s.Problems = append(s.Problems, fmt.Sprintf("behind the log by %d records (limit %d)", s.Lag, maxLag))
	}
	if s.DeadLetters, err = st.CountDeadLetters(ctx, recipient); err != nil {
		s.Problems = append(s.Problems, fmt.Sprintf("dead letters: %v", err))
	}
	s.Healthy = len(s.Problems) == 0
	return s
}
