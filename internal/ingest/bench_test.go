package ingest

import (
	"math/rand/v2"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/manifest"
)

// BenchmarkDecodeValidate measures the CPU cost of one 500-event batch
// between the decompressed body and the submission: decoding, envelope and
// per-event validation. The sub-benchmarks are the candidates, in one run:
//
//   - strict: the streaming decoder the server uses (jsontext tokens into
//     typed events, validated as they are read);
//   - encoding-json: the decoder it replaced (encoding/json into
//     map[string]any after a UTF-8 and depth pass), the baseline;
//   - json-v2: go-json-experiment's Unmarshal into provision.Batch, then the
//     same validation (strict on names, but not streaming: no limit holds
//     until the whole batch is in memory).
//
// ns/event and allocs/event are reported for each.
func BenchmarkDecodeValidate(b *testing.B) {
	now := time.Now()
	const n = 500
	body := ingesttest.JSON(ingesttest.Batch(rand.New(rand.NewPCG(1, 1)), "bench", n, now))
	l := DefaultLimits()
	s := &Server{deps: Deps{Manifest: manifest.Reference()}, limits: l, admit: newAdmission(l),
		versions: map[string]struct{}{manifest.Reference().Version: {}}}
	perEvent := func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/event")
	}

	b.Run("strict", func(b *testing.B) {
		perEvent(b)
		for b.Loop() {
			res := &reservation{a: s.admit}
			batch, err := decodeBatch(body, &decodeContext{limits: &s.limits, manifest: s.deps.Manifest, now: now, res: res})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.checkEnvelope(batch, now); err != nil {
				b.Fatal(err)
			}
			if len(batch.Rejected) != 0 || len(batch.Events) != n {
				b.Fatalf("%d rejected: %v", len(batch.Rejected), batch.Rejected[0])
			}
			res.free()
		}
		report(b)
	})
	b.Run("encoding-json", func(b *testing.B) {
		perEvent(b)
		for b.Loop() {
			if err := legacyCheckText(body, s.limits.MaxDepth); err != nil {
				b.Fatal(err)
			}
			batch, bad, err := legacyDecodeBatch(body, s.limits.MaxEvents)
			if err != nil {
				b.Fatal(err)
			}
			env := batch
			env.Events = nil
			if vs := s.deps.Manifest.CheckBatch(&env); len(vs) > 0 {
				b.Fatal(vs)
			}
			rej, acc := s.legacyCheckEvents(&batch, bad, now, nil)
			if len(rej) != 0 || len(acc) != n {
				b.Fatalf("%d rejected", len(rej))
			}
		}
		report(b)
	})
	b.Run("json-v2", func(b *testing.B) {
		perEvent(b)
		for b.Loop() {
			var batch provision.Batch
			if err := jsonv2.Unmarshal(body, &batch); err != nil {
				b.Fatal(err)
			}
			env := batch
			env.Events = nil
			if vs := s.deps.Manifest.CheckBatch(&env); len(vs) > 0 {
				b.Fatal(vs)
			}
			rej, acc := s.legacyCheckEvents(&batch, nil, now, nil)
			if len(rej) != 0 || len(acc) != n {
				b.Fatalf("%d rejected: %v", len(rej), rej[0])
			}
		}
		report(b)
	})
}
