package sqlite_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/provisionhq/provision/internal/sqlite"
	"github.com/provisionhq/provision/internal/storetest"
)

// BenchmarkAppend measures durable appends of 500-event batches from 8
// concurrent writers (group commit), as ingest makes them.
func BenchmarkAppend(b *testing.B) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "provision.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const writers, events = 8, 500
	tmpl := storetest.Submission("tmpl", "e", events)
	var n atomic.Int64
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				i := n.Add(1)
				sub := *tmpl
				sub.BatchID = fmt.Sprint("b", i)
				// A fleet: each batch from another installation.
				sub.InstallationID = fmt.Sprintf("%08d-1d7e-4b8a-9c1e-5a2b7d9e0f13", i)
				sub.Events = append(sub.Events[:0:0], tmpl.Events...)
				for j := range sub.Events {
					sub.Events[j].ID = fmt.Sprintf("b%d-%d", i, j)
				}
				if _, _, err := s.Append(b.Context(), &sub); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(writers*events*b.N)/b.Elapsed().Seconds(), "events/s")
}
