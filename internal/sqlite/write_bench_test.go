//go:build unix

package sqlite

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
)

// BenchmarkWriteGroup measures the writer alone: committing groups of
// batches already encoded, as Append's leader does, without the encoding
// that every request's goroutine does beforehand. The batches are
// bench/ingest's: 500 events of the common types, a payload of some 16 KB.
// cpu-us/batch is the whole process's CPU time (user and system, the
// engine's syscalls and the GC included) per committed batch.
//
// "bench" sends every batch from one installation, as bench/ingest does,
// so batch keys are appended at the end of their B-tree. "fleet" sends
// each batch from another installation into a store that already holds
// 200,000 batch keys, so each batch key lands on a leaf page of its own,
// as in production.
func BenchmarkWriteGroup(b *testing.B) {
	for _, fleet := range []bool{false, true} {
		for _, size := range []int{1, 4} {
			name := fmt.Sprint("bench/group=", size)
			if fleet {
				name = fmt.Sprint("fleet/group=", size)
			}
			b.Run(name, func(b *testing.B) { benchmarkWriteGroup(b, size, fleet) })
		}
	}
}

func benchmarkWriteGroup(b *testing.B, size int, fleet bool) {
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "provision.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var batches []*pendingAppend
	for i := range 16 { // one installation's batches
		batch := ingesttest.Batch(r, fmt.Sprint("tmpl", i), 500, now)
		enc, err := batchcodec.EncodeEvents(batch.Events)
		if err != nil {
			b.Fatal(err)
		}
		batches = append(batches, &pendingAppend{
			sub: &provision.Submission{
				InstallationID: "3f0c8a52-1d7e-4b8a-9c1e-5a2b7d9e0f13",
				Region:         batch.Region,
				ReceivedAt:     now,
				Events:         batch.Events,
				Response:       []byte(`{"batch_id":"00000000-0000-0000-0000-000000000000","accepted":500,"rejected":[],"duplicate":false}`),
			},
			payload: enc.Payload,
			sum:     enc.Summary,
		})
	}
	if fleet {
		if _, err := s.db.ExecContext(b.Context(), `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
			INSERT INTO batch_keys (installation_id, batch_id, received_at, seq_end, response)
			SELECT lower(hex(randomblob(16))), 'x', 0, 0, randomblob(100) FROM n`); err != nil {
			b.Fatal(err)
		}
	}
	group := make([]*pendingAppend, size)
	n, bytes := 0, 0
	user0, sys0 := cpuTime(b)
	for b.Loop() {
		for i := range group {
			tmpl := batches[n%len(batches)]
			sub := *tmpl.sub
			sub.BatchID = fmt.Sprint("b", n)
			if fleet {
				sub.InstallationID = ingesttest.InstallationID(r)
			}
			group[i] = &pendingAppend{sub: &sub, payload: tmpl.payload, sum: tmpl.sum, done: make(chan struct{})}
			bytes += len(tmpl.payload)
			n++
		}
		s.commitGroup(group)
		for _, p := range group {
			if p.err != nil || p.dup {
				b.Fatal(p.err, p.dup)
			}
		}
	}
	user1, sys1 := cpuTime(b)
	user, sys := user1-user0, sys1-sys0
	b.ReportMetric(float64((user+sys).Microseconds())/float64(n), "cpu-us/batch")
	b.ReportMetric(float64(user.Microseconds())/float64(n), "user-us/batch")
	b.ReportMetric(float64(sys.Microseconds())/float64(n), "sys-us/batch")
	b.ReportMetric(float64(bytes)/float64(n), "payload-B/batch")
}

// cpuTime is the user and the system time of the whole process so far.
func cpuTime(b *testing.B) (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}
