package ingest

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/manifest"
)

// BenchmarkDecodeValidate measures the CPU cost of one 500-event batch
// between the decompressed body and the submission: text checks, JSON
// decoding, envelope and per-event validation.
func BenchmarkDecodeValidate(b *testing.B) {
	now := time.Now()
	body := ingesttest.JSON(ingesttest.Batch(rand.New(rand.NewPCG(1, 1)), "bench", 500, now))
	s := &Server{deps: Deps{Manifest: manifest.Reference()}, limits: DefaultLimits()}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := checkText(body, s.limits.MaxDepth); err != nil {
			b.Fatal(err)
		}
		batch, bad, err := decodeBatch(body, s.limits.MaxEvents)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.checkEnvelope(&batch); err != nil {
			b.Fatal(err)
		}
		rej, acc := s.checkEvents(&batch, bad, now, nil)
		if len(rej) != 0 || len(acc) != 500 {
			b.Fatalf("%d rejected", len(rej))
		}
	}
	b.ReportMetric(float64(500*b.N)/b.Elapsed().Seconds(), "events/s")
}
