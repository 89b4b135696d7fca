package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
	"github.com/provisionhq/provision/internal/sqlite"
)

// BenchmarkRollupRead measures the rollup update over a log stored in
// SQLite: reading the stored batches back and folding their events into
// cells (in memory, so the figure is the read and the extraction, not the
// store's writes). "ingest" is the log bench/ingest leaves (500-event
// batches), "fleet" the small fleet of the rollup tests.
func BenchmarkRollupRead(b *testing.B) {
	for _, name := range []string{"ingest", "fleet"} {
		b.Run(name, func(b *testing.B) {
			s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "provision.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if name == "ingest" {
				fillIngest(b, s, 40, 500)
			} else if err := fleetOf(b).Fill(b.Context(), s); err != nil {
				b.Fatal(err)
			}
			events := 0
			b.ReportAllocs()
			for b.Loop() {
				st, err := (&rollup.Updater{Log: s, Store: rollup.NewMemoryStore([]byte("bench"))}).Update(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				events += st.Records
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
		})
	}
}

func fleetOf(b *testing.B) *rolluptest.Fleet {
	f, err := rolluptest.NewFleet(rolluptest.FleetConfig{Installations: 120, Days: 21, Seed: 7})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// fillIngest appends n batches of the events bench/ingest sends, each from
// its own installation, with the location ingest adds.
func fillIngest(b *testing.B, s *sqlite.Store, n, events int) {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	m := manifest.Reference()
	for i := range n {
		batch := ingesttest.Batch(r, fmt.Sprint("b-", i), events, now)
		ingest.AddLocation(m, provision.RegionEU, geo.Location{Country: "DE"}, batch.Events)
		sub := &provision.Submission{
			BatchID: batch.ID, InstallationID: batch.InstallationID, Region: batch.Region,
			ReceivedAt: now, Events: batch.Events, Response: []byte(`{}`),
		}
		if _, _, err := s.Append(b.Context(), sub); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRollupReadInPlace checks the rollups of stored events read in place
// against those of records.
func TestRollupReadInPlace(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "provision.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rolluptest.ReadInPlace(t, s)
}
