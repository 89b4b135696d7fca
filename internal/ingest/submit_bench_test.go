package ingest_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/sqlite"
)

// BenchmarkSubmit measures one 500-event gzip batch through the whole
// handler into a real store: the per-batch cost of durable ingest without
// the network.
func BenchmarkSubmit(b *testing.B) {
	store, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "provision.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	srv, err := ingest.NewServer(ingest.Deps{Log: store, Manifest: manifest.Reference()})
	if err != nil {
		b.Fatal(err)
	}
	const placeholder = "BENCHBATCH0000000000"
	tmpl := ingesttest.JSON(ingesttest.Batch(rand.New(rand.NewPCG(1, 2)), placeholder, 500, time.Now()))
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		i++
		body := ingesttest.Gzip(bytes.ReplaceAll(tmpl, []byte(placeholder), []byte(fmt.Sprintf("bench%015d", i))))
		req := httptest.NewRequest("POST", "/v1/submit", bytes.NewReader(body))
		req.Header.Set("Content-Encoding", "gzip")
		w := httptest.NewRecorder()
		b.StartTimer()
		srv.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(500*b.N)/b.Elapsed().Seconds(), "events/s")
}
