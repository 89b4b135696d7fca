package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/wire"
)

// FuzzDecodeBody throws arbitrary bodies, plain and declared as gzip or
// zstd, through everything that reads outside bytes before the store:
// decompression with its limits, the text checks, JSON decoding and
// validation. Whatever comes in, the result is a documented API error or a
// submission whose response encodes, and the memory budget is returned.
func FuzzDecodeBody(f *testing.F) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	valid := ingesttest.JSON(ingesttest.Batch(rand.New(rand.NewPCG(1, 1)), "seed", 3, now))
	f.Add(valid, "")
	f.Add(ingesttest.Gzip(valid), "gzip")
	f.Add(ingesttest.Zstd(valid), "zstd")
	f.Add([]byte(`{"batch_id":"a","events":[{"id":"e","type":"task","time":"2026-11-28T10:00:00Z","fields":{"task.duration":1e400}}]}`), "")
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[`), "")

	l := DefaultLimits()
	l.MaxBodyBytes = 1 << 20
	l.MaxDecompressedBytes = 4 << 20
	l.MemoryBudget = 32 << 20
	s := &Server{deps: Deps{Manifest: manifest.Reference()}, limits: l, admit: newAdmission(l)}
	f.Fuzz(func(t *testing.T, body []byte, encoding string) {
		req := httptest.NewRequest("POST", "/v1/submit", bytes.NewReader(body))
		req.Header.Set("Content-Encoding", encoding)
		res := &reservation{a: s.admit}
		defer func() {
			res.free()
			if n := s.admit.inUse.Load(); n != 0 {
				t.Fatalf("budget leaked %d bytes", n)
			}
		}()
		buf, err := readBody(httptest.NewRecorder(), req, &s.limits, res)
		if err != nil {
			documented(t, err)
			return
		}
		defer putBuffer(buf)
		if err := checkText(*buf, l.MaxDepth); err != nil {
			documented(t, err)
			return
		}
		batch, bad, aerr := decodeBatch(*buf, l.MaxEvents)
		if aerr != nil {
			documented(t, aerr)
			return
		}
		if err := s.checkEnvelope(&batch); err != nil {
			documented(t, err)
			return
		}
		rejected, accepted := s.checkEvents(&batch, bad, now, nil)
		if len(rejected)+len(accepted) != len(batch.Events) {
			t.Fatalf("%d rejected + %d accepted != %d events", len(rejected), len(accepted), len(batch.Events))
		}
		if _, err := json.Marshal(wire.SubmitAnswer{BatchID: batch.ID, Rejected: rejected, Accepted: len(accepted)}); err != nil {
			t.Fatal(err)
		}
	})
}

func documented(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code == "" || ae.Status < 400 || ae.Status > 503 {
		t.Fatalf("undocumented error %v", err)
	}
}
