package wire

import (
	"testing"
	"time"
)

// Wait follows Retry's exponential backoff with jitter, bounded by Max
// (and the jitter), never below the server's Retry-After and never above
// MaxWait or Max.
func TestPolicyWait(t *testing.T) {
	p := Policy{Initial: time.Second, Max: 8 * time.Second, MaxWait: time.Minute}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 40: 8 * time.Second} {
		for range 20 {
			got := p.Wait(attempt, nil)
			if got < want/2 || got > want*3/2 {
				t.Fatalf("Wait(%d) = %s, want %s ± 50%%", attempt, got, want)
			}
		}
	}
	busy := StatusError(503, "30", time.Now())
	if got := p.Wait(1, busy); got < 30*time.Second {
		t.Errorf("Wait after Retry-After 30 = %s", got)
	}
	if got := p.Wait(1, StatusError(503, "3600", time.Now())); got != time.Minute {
		t.Errorf("Wait after Retry-After 3600 = %s, want MaxWait", got)
	}
}
