package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
)

// BenchmarkWrite measures the worker's write: 100 submissions of 20 events
// in one transaction (key claims, sequence numbers, COPY).
func BenchmarkWrite(b *testing.B) {
	s := pgtest.Open(b)
	ctx := context.Background()
	now := time.Now().UTC()
	const subs, events = 100, 20
	n := 0
	for b.Loop() {
		batch := make([]*provision.Submission, subs)
		for i := range batch {
			n++
			batch[i] = submission(fmt.Sprint("b", n), now)
			for j := range events {
				batch[i].Events = append(batch[i].Events, provision.Event{
					ID: fmt.Sprintf("b%d/%d", n, j), Type: "task", Time: now,
					Fields: map[string]any{"task.type": "install", "task.status": "success", "location.country": "DE"},
				})
			}
		}
		if _, err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*subs*events)/b.Elapsed().Seconds(), "events/s")
}
