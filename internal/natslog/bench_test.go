package natslog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// BenchmarkAppend measures the ingest side: 64 concurrent appends of
// 20-event submissions, each waiting for JetStream's acknowledgement.
func BenchmarkAppend(b *testing.B) {
	l := openB(b)
	ctx := context.Background()
	const inFlight = 64
	n := 0
	for b.Loop() {
		var wg sync.WaitGroup
		for range inFlight {
			n++
			ids := make([]string, 20)
			for j := range ids {
				ids[j] = fmt.Sprintf("b%d/%d", n, j)
			}
			sub := submission(fmt.Sprint("b", n), ids...)
			wg.Go(func() {
				if _, _, err := l.Append(ctx, sub); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.N*inFlight*20)/b.Elapsed().Seconds(), "events/s")
}
