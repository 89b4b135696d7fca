package backend

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/privacy"
)

// writeBytes is this process's write_bytes from /proc/self/io: what it
// caused to be written to storage. -1 where there is no /proc.
func writeBytes() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// BenchmarkErasure measures erasures on the embedded store, one alone and
// a thousand in a batch, each installation with 20 events in 4 batches,
// among 1,000 installations kept: time and bytes written per erasure, the
// rollup refresh of the batch included.
//
//	go test -run '^$' -bench Erasure -benchtime 1x ./internal/backend/
func BenchmarkErasure(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				be, err := Open(ctx, Options{Store: b.TempDir(), Create: true})
				if err != nil {
					b.Fatal(err)
				}
				day := time.Now().UTC().Add(-24 * time.Hour)
				id := func(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }
				for i := range 1000 + n {
					for j := range 4 {
						sub := &provision.Submission{BatchID: fmt.Sprintf("b%d-%d", i, j), InstallationID: id(i), Region: "eu", ReceivedAt: day, Response: []byte(`{}`)}
						for k := range 5 {
							sub.Events = append(sub.Events, provision.Event{ID: fmt.Sprintf("e%d-%d-%d", i, j, k), Type: "software", Time: day,
								Fields: map[string]any{"software.name": "Secure Connection", "software.version": "5.14.0"}})
						}
						if _, _, err := be.Log.Append(ctx, sub); err != nil {
							b.Fatal(err)
						}
					}
				}
				if _, err := be.Updater(nil).Update(ctx); err != nil {
					b.Fatal(err)
				}
				refresh := be.Refresher(nil)
				svc, _, err := be.PrivacyService(referenceManifest(b), nil, refresh)
				if err != nil {
					b.Fatal(err)
				}
				w0, t0 := writeBytes(), time.Now()
				b.StartTimer()
				for i := range n {
					if _, err := svc.Erase(ctx, id(1000+i), fmt.Sprintf("r%d", i), privacy.SourceOperator); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := refresh.Refresh(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				el, w1 := time.Since(t0), writeBytes()
				b.ReportMetric(float64(el.Microseconds())/float64(n), "µs/erasure")
				if w0 >= 0 {
					b.ReportMetric(float64(w1-w0)/float64(n), "written-B/erasure")
				}
				be.Close()
				b.StartTimer()
			}
		})
	}
}
