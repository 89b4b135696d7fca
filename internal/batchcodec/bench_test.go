package batchcodec_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/manifest"
)

// events are a bench batch as ingest decodes it.
func events(b *testing.B) []provision.Event {
	now := time.Now()
	body := ingesttest.JSON(ingesttest.Batch(rand.New(rand.NewPCG(1, 2)), "bench-batch", 500, now))
	batch, err := ingest.DecodeBatch(body, manifest.Reference(), ingest.DefaultLimits(), now)
	if err != nil {
		b.Fatal(err)
	}
	return batch.Events
}

func BenchmarkEncode(b *testing.B) {
	evs := events(b)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		enc, err := batchcodec.EncodeEvents(evs)
		if err != nil {
			b.Fatal(err)
		}
		size = len(enc.Payload)
	}
	b.ReportMetric(float64(size), "bytes/batch")
	b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecode(b *testing.B) {
	enc, err := batchcodec.EncodeEvents(events(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := batchcodec.Decode(enc.Payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(enc.Events*b.N)/b.Elapsed().Seconds(), "events/s")
}
