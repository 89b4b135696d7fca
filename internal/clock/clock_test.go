package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleepElapses(t *testing.T) {
	if err := Sleep(context.Background(), time.Nanosecond); err != nil {
		t.Fatalf("Sleep = %v, want nil", err)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
}

func TestSleepEndsWithDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sleep = %v, want context.DeadlineExceeded", err)
	}
}

// Every runs a pass at once and one per kick, and returns once ctx ends;
// the ticker (an hour) never fires here.
func TestEveryKickAndStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kick := make(chan struct{})
	passes := make(chan int, 8)
	done := make(chan struct{})
	n := 0
	go func() {
		defer close(done)
		Every(ctx, time.Hour, kick, func(context.Context) {
			n++
			passes <- n
		})
	}()
	if got := <-passes; got != 1 {
		t.Fatalf("first pass = %d, want 1 (at once)", got)
	}
	for want := 2; want <= 3; want++ {
		kick <- struct{}{}
		if got := <-passes; got != want {
			t.Fatalf("pass after kick = %d, want %d", got, want)
		}
	}
	cancel()
	<-done
	if len(passes) != 0 {
		t.Fatalf("%d passes after the context ended", len(passes))
	}
}
