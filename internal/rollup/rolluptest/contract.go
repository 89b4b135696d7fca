package rolluptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/memlog"
	"github.com/provisionhq/provision/internal/rollup"
)

// SmallFleet is a fleet small enough for the contract tests.
func SmallFleet(tb testing.TB) (*Fleet, *memlog.Log) {
	tb.Helper()
	f, err := NewFleet(FleetConfig{Installations: 120, Days: 21, Seed: 7})
	if err != nil {
		tb.Fatal(err)
	}
	log := memlog.New()
	if err := f.Fill(context.Background(), log); err != nil {
		tb.Fatal(err)
	}
	return f, log
}

// Snapshot renders every cell of a store as text, for comparisons.
func Snapshot(tb testing.TB, s rollup.Store) string {
	tb.Helper()
	cells, err := s.Cells(context.Background(), rollup.Query{})
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	for _, c := range cells {
		p50, _ := c.Quantile(0.5)
		fmt.Fprintf(&b, "%s events=%d weight=%d failures=%d installs=%d p50=%.0f\n", c.Key, c.Events, c.Weight, c.Failures, c.Distinct(), p50)
	}
	return b.String()
}

// StoreContract runs the behaviour every rollup.Store must have. newStore
// returns an empty store; the hash key it uses must be stable for that store.
func StoreContract(t *testing.T, newStore func(t *testing.T) rollup.Store) {
	ctx := context.Background()
	day := "2026-10-01"
	cell := func(view, dims string, events int64, hashes ...uint64) *rollup.Cell {
		c := rollup.NewCell(rollup.Key{Day: day, View: view, Dims: dims})
		c.Events = events
		for _, h := range hashes {
			c.Installs.InsertHash(h)
		}
		return c
	}

	t.Run("apply merges and moves the checkpoint", func(t *testing.T) {
		s := newStore(t)
		if err := s.Apply(ctx, "c", 0, 10, rollup.Delta{Cells: []*rollup.Cell{cell("active", "all=all", 2, 1<<60, 2<<60)}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, "c", 10, 20, rollup.Delta{Cells: []*rollup.Cell{cell("active", "all=all", 3, 2<<60, 3<<60)}}); err != nil {
			t.Fatal(err)
		}
		cp, err := s.Checkpoint(ctx, "c")
		if err != nil || cp != 20 {
			t.Fatalf("checkpoint = %d, %v; want 20", cp, err)
		}
		cells, err := s.Cells(ctx, rollup.Query{Views: []string{"active"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(cells) != 1 || cells[0].Events != 5 || cells[0].Distinct() != 3 {
			t.Fatalf("cells = %+v", cells)
		}
	})

	t.Run("apply from a stale checkpoint changes nothing", func(t *testing.T) {
		s := newStore(t)
		if err := s.Apply(ctx, "c", 0, 10, rollup.Delta{Cells: []*rollup.Cell{cell("active", "all=all", 1, 1)}}); err != nil {
			t.Fatal(err)
		}
		err := s.Apply(ctx, "c", 0, 10, rollup.Delta{Cells: []*rollup.Cell{cell("active", "all=all", 1, 1)}})
		if !errors.Is(err, rollup.ErrConflict) {
			t.Fatalf("second apply from 0: %v, want ErrConflict", err)
		}
		cells, _ := s.Cells(ctx, rollup.Query{})
		if len(cells) != 1 || cells[0].Events != 1 {
			t.Fatalf("a conflicting apply changed cells: %+v", cells)
		}
	})

	t.Run("query by view and days", func(t *testing.T) {
		s := newStore(t)
		var cs []*rollup.Cell
		for _, d := range []string{"2026-10-01", "2026-10-02", "2026-10-03"} {
			for _, v := range []string{"active", "task"} {
				c := rollup.NewCell(rollup.Key{Day: d, View: v, Dims: "all=all"})
				c.Events = 1
				cs = append(cs, c)
			}
		}
		if err := s.Apply(ctx, "c", 0, 1, rollup.Delta{Cells: cs}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Cells(ctx, rollup.Query{Views: []string{"task"}, From: "2026-10-02", To: "2026-10-03"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Day != "2026-10-02" || got[1].Day != "2026-10-03" || got[0].View != "task" {
			t.Fatalf("query returned %v", got)
		}
	})

	t.Run("certificates are kept once, the full form wins", func(t *testing.T) {
		s := newStore(t)
		nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := s.Apply(ctx, "c", 0, 1, rollup.Delta{Certs: []rollup.Cert{{View: rollup.ViewTLSIssuer, ID: "aa", Subject: "CN=A"}}}); err != nil {
			t.Fatal(err)
		}
		full := rollup.Cert{View: rollup.ViewTLSIssuer, ID: "aa", Subject: "CN=A", Issuer: "CN=A", NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0), SelfSigned: true, DER: []byte{1, 2, 3}}
		if err := s.Apply(ctx, "c", 1, 2, rollup.Delta{Certs: []rollup.Cert{full, {View: rollup.ViewFileSigner, ID: "bb"}}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Certs(ctx, rollup.ViewTLSIssuer)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !bytes.Equal(got[0].DER, full.DER) || !got[0].NotBefore.Equal(nb) || !got[0].SelfSigned {
			t.Fatalf("certs = %+v", got)
		}
	})

	t.Run("reset keeps the hash key", func(t *testing.T) {
		s := newStore(t)
		k1, err := s.HashKey(ctx)
		if err != nil || len(k1) < 16 {
			t.Fatalf("hash key %x, %v", k1, err)
		}
		if err := s.Apply(ctx, "c", 0, 5, rollup.Delta{Cells: []*rollup.Cell{cell("active", "all=all", 1, 1)}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		k2, _ := s.HashKey(ctx)
		cp, _ := s.Checkpoint(ctx, "c")
		cells, _ := s.Cells(ctx, rollup.Query{})
		if !bytes.Equal(k1, k2) || cp != 0 || len(cells) != 0 {
			t.Fatalf("after reset: key changed %v, checkpoint %d, %d cells", !bytes.Equal(k1, k2), cp, len(cells))
		}
	})

	t.Run("concurrent updaters count every record once", func(t *testing.T) {
		_, log := SmallFleet(t)
		one := newStore(t)
		if _, err := (&rollup.Updater{Log: log, Store: one, Batch: 700}).Update(ctx); err != nil {
			t.Fatal(err)
		}
		many := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				_, err := (&rollup.Updater{Log: log, Store: many, Batch: 700}).Update(ctx)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if a, b := Snapshot(t, one), Snapshot(t, many); a != b {
			t.Fatalf("concurrent build differs from a single one")
		}
	})
}
