package batchcodec

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

// pages serves batches ending at 1..n, RewritePage at a time.
func pages(n int64, asked *[]int64) func(after int64) ([]*Stored, error) {
	return func(after int64) ([]*Stored, error) {
		*asked = append(*asked, after)
		var out []*Stored
		for end := after + 1; end <= n && len(out) < RewritePage; end++ {
			out = append(out, &Stored{End: end})
		}
		return out, nil
	}
}

func TestRewriteVisitsEveryPageAndWritesChanged(t *testing.T) {
	var asked, written []int64
	n := int64(2*RewritePage + 3)
	err := Rewrite(pages(n, &asked), func(b *Stored) error {
		written = append(written, b.End)
		return nil
	}, func(b *Stored) (bool, bool) { return b.End%10 == 0, true })
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{0, RewritePage, 2 * RewritePage}; len(asked) != len(want) || asked[1] != want[1] || asked[2] != want[2] {
		t.Errorf("pages asked after %v, want %v", asked, want)
	}
	if len(written) != int(n/10) || written[0] != 10 {
		t.Errorf("written %v, want every tenth batch", written)
	}
}

func TestRewriteStopsWhenVisitSaysSo(t *testing.T) {
	var asked []int64
	visited := 0
	err := Rewrite(pages(1000, &asked), func(*Stored) error { return nil }, func(b *Stored) (bool, bool) {
		visited++
		return false, b.End < 5
	})
	if err != nil || visited != 5 || len(asked) != 1 {
		t.Errorf("err %v, visited %d, pages %d; want nil, 5, 1", err, visited, len(asked))
	}
}

func TestRewriteReturnsPageAndWriteErrors(t *testing.T) {
	boom := errors.New("boom")
	err := Rewrite(func(int64) ([]*Stored, error) { return nil, boom }, nil, nil)
	if !errors.Is(err, boom) {
		t.Errorf("page error: got %v", err)
	}
	var asked []int64
	err = Rewrite(pages(3, &asked), func(*Stored) error { return boom }, func(*Stored) (bool, bool) { return true, true })
	if !errors.Is(err, boom) {
		t.Errorf("write error: got %v", err)
	}
}

type fakeRows struct {
	n, i int
	err  error
}

func (r *fakeRows) Next() bool { r.i++; return r.i <= r.n }
func (r *fakeRows) Err() error { return r.err }

func TestReadRecordsAndScanAll(t *testing.T) {
	entries := sample()
	scan := func(rows *fakeRows) func() (*Stored, error) {
		return func() (*Stored, error) {
			first := int64(10 * rows.i)
			return &Stored{End: first + 2, Head: Header{First: first, BatchID: "b"}, Entries: entries}, nil
		}
	}
	rows := &fakeRows{n: 3}
	recs, err := ReadRecords(rows, scan(rows), 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Batch 1 holds seqs 10, 12 and 15 (10 is not after 10); batch 2
	// starts at 20; the limit stops there.
	var seqs []int64
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
	}
	if len(seqs) != 3 || seqs[0] != 12 || seqs[1] != 15 || seqs[2] != 20 {
		t.Errorf("seqs %v, want [12 15 20]", seqs)
	}
	boom := errors.New("boom")
	if _, err := ReadRecords(&fakeRows{err: boom}, nil, 0, 5); !errors.Is(err, boom) {
		t.Errorf("rows error: got %v", err)
	}
	if _, err := ReadRecords(&fakeRows{n: 1}, func() (*Stored, error) { return nil, boom }, 0, 5); !errors.Is(err, boom) {
		t.Errorf("scan error: got %v", err)
	}
	rows = &fakeRows{n: 4}
	all, err := ScanAll(rows, scan(rows))
	if err != nil || len(all) != 4 {
		t.Errorf("ScanAll: %d batches, %v", len(all), err)
	}
	if _, err := ScanAll(&fakeRows{n: 2}, func() (*Stored, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("ScanAll scan error: got %v", err)
	}
	if _, err := ScanAll(&fakeRows{err: boom}, nil); !errors.Is(err, boom) {
		t.Errorf("ScanAll rows error: got %v", err)
	}
}

func TestSetPayloadNamesTheBatch(t *testing.T) {
	b := &Stored{End: 42}
	if err := b.SetPayload([]byte{0xff, 0xff}); err == nil || !strings.Contains(err.Error(), "batch ending at 42") {
		t.Errorf("got %v", err)
	}
	payload, sum, err := (&Stored{Entries: sample()}).Rewritten()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetPayload(payload); err != nil || len(b.Entries) != len(sample()) || sum.Last != 5 {
		t.Errorf("round trip: %d entries, last %d, %v", len(b.Entries), sum.Last, err)
	}
}

func TestReaderVarintIsBinaryVarint(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 63, -64, 64, -65, 1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64} {
		r := &reader{b: binary.AppendVarint(nil, v)}
		if got := r.varint(); got != v || r.err != nil || r.left() != 0 {
			t.Errorf("varint of %d: got %d, err %v, %d bytes left", v, got, r.err, r.left())
		}
	}
	r := &reader{b: []byte{0x80}}
	if r.varint(); r.err != errShort {
		t.Errorf("truncated varint: err %v", r.err)
	}
}
