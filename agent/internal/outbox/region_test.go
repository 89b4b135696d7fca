package outbox

import (
	"fmt"
	"testing"
)

// A batch never mixes regions, and a repeat under another region is a new
// event rather than a count on one recorded under other terms.
func TestBatchesKeepTheRegionEventsWereRecordedUnder(t *testing.T) {
	s := open(t, t.TempDir(), Limits{}, nil)
	add := func(id, region, key string) {
		t.Helper()
		if err := s.Add(event(id, "ui_error"), region, key); err != nil {
			t.Fatal(err)
		}
	}
	add("e1", "eu", "same")
	add("e2", "eu", "")
	add("b1", "br", "same") // same key, other region: not a repeat of e1
	add("e3", "eu", "")
	add("b2", "br", "same") // a repeat of b1
	add("old", "", "")      // queued before regions were kept

	var got []string
	for {
		in, err := s.StartBatch(10, 1<<20, func(es []Entry) (*Inflight, error) {
			line := es[0].Region + ":"
			for _, e := range es {
				if e.Region != es[0].Region {
					t.Errorf("batch mixes %q and %q", es[0].Region, e.Region)
				}
				line += fmt.Sprintf(" %s", e.Event.ID)
				if n, ok := e.Event.Fields["event.count"]; ok {
					line += fmt.Sprintf("×%v", n)
				}
			}
			got = append(got, line)
			seqs := make([]uint64, len(es))
			for i, e := range es {
				seqs[i] = e.Seq
			}
			return &Inflight{BatchID: line, Seqs: seqs}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if in == nil {
			break
		}
		if err := s.Complete(in.Seqs, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"eu: e1×1 e2 e3", "br: b1×2", ": old"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("batches %q, want %q", got, want)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}
