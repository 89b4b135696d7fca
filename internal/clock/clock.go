// Package clock holds the ways the project waits: a sleep that ends early
// when its context does, and the loop of the background jobs that run a
// pass at every tick.
package clock

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx ends, whichever is first, and returns
// ctx's error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Every runs pass at once, then at every tick of every or sooner when kick
// receives (a nil kick never does), until ctx ends. pass handles its own
// errors: a background job logs them and tries again at the next tick.
// every must be positive.
func Every(ctx context.Context, every time.Duration, kick <-chan struct{}, pass func(context.Context)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}
