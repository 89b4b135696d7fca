package agent

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// BenchmarkRecordError is the cost of one durable recording: one fsync per
// call when calls come one after another.
func BenchmarkRecordError(b *testing.B) {
	a := openAgent(b, b.TempDir())
	if _, err := a.Accept("eu"); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if err := a.RecordError(ctx, UIError{Type: "crash", Code: "E1"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordErrorBurst shows the group commit: a burst of 64
// concurrent calls shares transactions and fsyncs, so the cost per call
// falls far below one fsync. ns/op is per burst; ns/record per call.
func BenchmarkRecordErrorBurst(b *testing.B) {
	a := openAgent(b, b.TempDir())
	if _, err := a.Accept("eu"); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const burst = 64
	bursts := 0
	for b.Loop() {
		var wg sync.WaitGroup
		for i := range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := a.RecordError(ctx, UIError{Type: "crash", Code: fmt.Sprint("E", i%16)}); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		bursts++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(bursts*burst), "ns/record")
}
