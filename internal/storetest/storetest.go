// Package storetest is the contract every store and log backend passes:
// one set of subtests, run over the embedded SQLite store and the
// PostgreSQL adapter alike, so that ingest and the consumers can rely on
// the same behaviour whichever engine is below.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision"
)

// Log is what the log part of the suite tests: the durable log and Close.
type Log interface {
	provision.Log
	Close() error
}

// Checkpoints is what the checkpoint part tests.
type Checkpoints interface {
	provision.Checkpoints
	Close() error
}

// Store is a backend that holds both, as the SQL stores and the memory log
// do.
type Store interface {
	provision.Log
	provision.Checkpoints
	Close() error
}

// Run runs the whole contract suite. open returns a new, empty store each
// time it is called; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) Store) {
	RunLog(t, func(t *testing.T) Log { return open(t) })
	RunCheckpoints(t, func(t *testing.T) Checkpoints { return open(t) })
}

// Gap is a subtest a backend cannot pass, and why. The subtest is skipped
// with the reason, so what a backend does not do is written where its
// contract runs.
type Gap struct{ Test, Why string }

// RunLog runs the log part of the suite, for a backend that is a log only
// (the JetStream log keeps no consumer checkpoints of its own).
func RunLog(t *testing.T, open func(t *testing.T) Log, gaps ...Gap) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Log)
	}{
		{"EmptyLog", testEmptyLog},
		{"AppendThenRead", testAppendThenRead},
		{"ClockSkewKept", testClockSkewKept},
		{"DuplicateBatch", testDuplicateBatch},
		{"IDsScopedToInstallation", testIDsScopedToInstallation},
		{"BatchWithoutEvents", testBatchWithoutEvents},
		{"ReadPages", testReadPages},
		{"SeqIncreases", testSeqIncreases},
		{"ConcurrentAppends", testConcurrentAppends},
		{"ConcurrentResends", testConcurrentResends},
		{"CanceledContext", testCanceledContext},
		{"CloseTwice", testCloseTwice},
	}
	// A gap that names no subtest is stale: the case was renamed or
	// dropped, and the backend's excuse no longer says anything.
	names := map[string]bool{}
	for _, tc := range tests {
		names[tc.name] = true
	}
	for _, g := range gaps {
		if !names[g.Test] {
			t.Errorf("gap %q names no subtest of the suite", g.Test)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, g := range gaps {
				if g.Test == tc.name {
					t.Skip(g.Why)
				}
			}
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// RunCheckpoints runs the checkpoint part of the suite.
func RunCheckpoints(t *testing.T, open func(t *testing.T) Checkpoints) {
	t.Run("Checkpoints", func(t *testing.T) {
		s := open(t)
		t.Cleanup(func() { s.Close() })
		testCheckpoints(t, s)
	})
}

var base = time.Date(2026, 11, 28, 10, 30, 0, 123456789, time.UTC)

// Submission builds a valid submission with n events whose ids start with
// prefix. Exported so backend packages can use it in their own tests.
func Submission(batchID, prefix string, n int) *provision.Submission {
	s := &provision.Submission{
		BatchID:         batchID,
		InstallationID:  "3f0c8a52-1d7e-4b8a-9c1e-5a2b7d9e0f13",
		Region:          provision.RegionEU,
		ManifestVersion: "2026.11.1",
		ReceivedAt:      base.Add(time.Minute),
		Response:        []byte(fmt.Sprintf(`{"batch_id":%q,"accepted":%d,"rejected":[],"duplicate":false}`, batchID, n)),
	}
	for i := range n {
		s.Events = append(s.Events, provision.Event{
			ID:   fmt.Sprintf("%s-%d", prefix, i),
			Type: "task",
			Time: base.Add(time.Duration(i) * time.Second),
			Fields: map[string]any{
				"task.type":        "install",
				"task.status":      "success",
				"task.duration":    json.Number(fmt.Sprint(1000 + i)),
				"os.version":       "11 23H2",
				"software.version": "5.14.0.1234",
				// Ingest adds the derived location to the event types
				// that declare it; the record carries it from there.
				"location.country":     "DE",
				"location.subdivision": "BY",
			},
		})
	}
	return s
}

func ctx(t *testing.T) context.Context { return t.Context() }

func mustAppend(t *testing.T, s Log, sub *provision.Submission) []byte {
	t.Helper()
	resp, dup, err := s.Append(ctx(t), sub)
	if err != nil {
		t.Fatalf("Append(%s): %v", sub.BatchID, err)
	}
	if dup {
		t.Fatalf("Append(%s): duplicate on first append", sub.BatchID)
	}
	return resp
}

func readAll(t *testing.T, s Log) []provision.Record {
	t.Helper()
	var out []provision.Record
	var after int64
	for {
		recs, err := s.Read(ctx(t), after, 100)
		if err != nil {
			t.Fatalf("Read(%d): %v", after, err)
		}
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		after = recs[len(recs)-1].Seq
	}
}

func testEmptyLog(t *testing.T, s Log) {
	head, err := s.Head(ctx(t))
	if err != nil || head != 0 {
		t.Fatalf("Head = %d, %v; want 0, nil", head, err)
	}
	recs, err := s.Read(ctx(t), 0, 10)
	if err != nil || len(recs) != 0 {
		t.Fatalf("Read = %d records, %v; want none", len(recs), err)
	}
}

func testAppendThenRead(t *testing.T, s Log) {
	sub := Submission("b1", "e", 3)
	resp := mustAppend(t, s, sub)
	if string(resp) != string(sub.Response) {
		t.Errorf("response = %s, want %s", resp, sub.Response)
	}
	recs := readAll(t, s)
	if len(recs) != 3 {
		t.Fatalf("read %d records, want 3", len(recs))
	}
	for i, r := range recs {
		ev := sub.Events[i]
		if r.BatchID != "b1" || r.InstallationID != sub.InstallationID || r.Region != "eu" ||
			r.Country != "DE" || r.Subdivision != "BY" || !r.ReceivedAt.Equal(sub.ReceivedAt) {
			t.Errorf("record %d envelope = %+v", i, r)
		}
		if r.Event.ID != ev.ID || r.Event.Type != ev.Type || !r.Event.Time.Equal(ev.Time) {
			t.Errorf("record %d event = %s %s %v, want %s %s %v", i, r.Event.ID, r.Event.Type, r.Event.Time, ev.ID, ev.Type, ev.Time)
		}
		if !reflect.DeepEqual(r.Event.Fields, ev.Fields) {
			t.Errorf("record %d fields = %#v, want %#v", i, r.Event.Fields, ev.Fields)
		}
	}
	head, err := s.Head(ctx(t))
	if err != nil || head != recs[2].Seq {
		t.Errorf("Head = %d, %v; want %d", head, err, recs[2].Seq)
	}

	// An event type without location keeps none, although the other
	// events of its batch have one: the location is the event's
	// (provision.NewRecord), never the batch's.
	mixed := Submission("b2", "u", 2)
	mixed.Events[1] = provision.Event{ID: "u-1", Type: "user_count", Time: base, Fields: map[string]any{
		"software.name": "Secure Connection", "software.version": "5.14", "os.version": "11",
	}}
	mustAppend(t, s, mixed)
	recs, err = s.Read(ctx(t), head, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("Read after %d = %d, %v", head, len(recs), err)
	}
	if recs[0].Country != "DE" || recs[0].Subdivision != "BY" {
		t.Errorf("task record has location %q %q, want DE BY", recs[0].Country, recs[0].Subdivision)
	}
	if recs[1].Country != "" || recs[1].Subdivision != "" {
		t.Errorf("user_count record has location %q %q", recs[1].Country, recs[1].Subdivision)
	}
}

// testClockSkewKept: the correction ingest applied to a device's clock
// travels with each event, and an event without one reads back without.
func testClockSkewKept(t *testing.T, s Log) {
	sub := Submission("skew", "k", 3)
	sub.Events[0].ClockSkew = -30 * time.Hour
	sub.Events[2].ClockSkew = 3 * 24 * time.Hour
	mustAppend(t, s, sub)
	recs := readAll(t, s)
	if len(recs) != 3 {
		t.Fatalf("read %d records, want 3", len(recs))
	}
	for i, r := range recs {
		if r.Event.ClockSkew != sub.Events[i].ClockSkew || !r.Event.Time.Equal(sub.Events[i].Time) {
			t.Errorf("record %d: time %s, clock skew %s; want %s, %s", i, r.Event.Time, r.Event.ClockSkew, sub.Events[i].Time, sub.Events[i].ClockSkew)
		}
	}
}

func testDuplicateBatch(t *testing.T, s Log) {
	first := Submission("b1", "e", 2)
	want := mustAppend(t, s, first)
	// A resend may carry a different response (the server computed it
	// again); the first one wins.
	again := Submission("b1", "e", 2)
	again.Response = []byte(`{"different":true}`)
	resp, dup, err := s.Append(ctx(t), again)
	if err != nil {
		t.Fatal(err)
	}
	if !dup || string(resp) != string(want) {
		t.Errorf("resend = %s, dup %v; want %s, true", resp, dup, want)
	}
	// Even a resend with other events stores nothing.
	other := Submission("b1", "x", 5)
	if _, dup, err := s.Append(ctx(t), other); err != nil || !dup {
		t.Fatalf("resend with other events: dup %v, %v", dup, err)
	}
	if n := len(readAll(t, s)); n != 2 {
		t.Errorf("%d records after resends, want 2", n)
	}
}

func testBatchWithoutEvents(t *testing.T, s Log) {
	// Every event was rejected: the batch id is still remembered, so a
	// resend gets the same answer.
	sub := Submission("b1", "e", 0)
	sub.Response = []byte(`{"batch_id":"b1","accepted":0,"rejected":[{"index":0}],"duplicate":false}`)
	mustAppend(t, s, sub)
	resp, dup, err := s.Append(ctx(t), Submission("b1", "e", 0))
	if err != nil || !dup || string(resp) != string(sub.Response) {
		t.Fatalf("resend = %s, %v, %v", resp, dup, err)
	}
	if head, _ := s.Head(ctx(t)); head != 0 {
		t.Errorf("Head = %d, want 0", head)
	}
}

func testReadPages(t *testing.T, s Log) {
	mustAppend(t, s, Submission("b1", "e", 25))
	all, err := s.Read(ctx(t), 0, 1000)
	if err != nil || len(all) != 25 {
		t.Fatalf("Read all = %d, %v", len(all), err)
	}
	page, err := s.Read(ctx(t), all[9].Seq, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 5 || page[0].Seq != all[10].Seq || page[4].Seq != all[14].Seq {
		t.Errorf("page after %d = %d records", all[9].Seq, len(page))
	}
	if recs, err := s.Read(ctx(t), all[24].Seq, 10); err != nil || len(recs) != 0 {
		t.Errorf("read past head = %d, %v", len(recs), err)
	}
	if recs, err := s.Read(ctx(t), 0, 0); err != nil || len(recs) != 0 {
		t.Errorf("read with limit 0 = %d, %v", len(recs), err)
	}
}

func testSeqIncreases(t *testing.T, s Log) {
	var last int64
	for b := range 5 {
		mustAppend(t, s, Submission(fmt.Sprintf("b%d", b), fmt.Sprintf("e%d", b), 4))
		head, err := s.Head(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if head <= last {
			t.Fatalf("Head went from %d to %d", last, head)
		}
		last = head
	}
	recs := readAll(t, s)
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Fatalf("Seq not increasing: %d then %d", recs[i-1].Seq, recs[i].Seq)
		}
	}
	if len(recs) != 20 || recs[len(recs)-1].Seq != last {
		t.Errorf("%d records, last seq %d, head %d", len(recs), recs[len(recs)-1].Seq, last)
	}
}

func testConcurrentAppends(t *testing.T, s Log) {
	const workers, batches, events = 8, 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				id := fmt.Sprintf("w%d-b%d", w, b)
				if _, dup, err := s.Append(ctx(t), Submission(id, id, events)); err != nil || dup {
					errs <- fmt.Errorf("%s: dup %v, %v", id, dup, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	recs := readAll(t, s)
	if len(recs) != workers*batches*events {
		t.Fatalf("%d records, want %d", len(recs), workers*batches*events)
	}
	// A batch's events are contiguous: one transaction each.
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Fatalf("Seq not increasing at %d", i)
		}
	}
}

func testConcurrentResends(t *testing.T, s Log) {
	const senders = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range senders {
		wg.Go(func() {
			_, dup, err := s.Append(ctx(t), Submission("same", "e", 10))
			if err != nil {
				t.Error(err)
				return
			}
			if !dup {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firsts != 1 {
		t.Errorf("%d appends were first, want 1", firsts)
	}
	if n := len(readAll(t, s)); n != 10 {
		t.Errorf("%d records, want 10", n)
	}
}

func testCheckpoints(t *testing.T, s Checkpoints) {
	if seq, err := s.Checkpoint(ctx(t), "rollup"); err != nil || seq != 0 {
		t.Fatalf("unknown consumer = %d, %v; want 0, nil", seq, err)
	}
	for _, c := range []struct {
		consumer string
		seq      int64
	}{{"rollup", 10}, {"forward.ga", 3}, {"rollup", 42}} {
		if err := s.SetCheckpoint(ctx(t), c.consumer, c.seq); err != nil {
			t.Fatal(err)
		}
	}
	if seq, _ := s.Checkpoint(ctx(t), "rollup"); seq != 42 {
		t.Errorf("rollup = %d, want 42", seq)
	}
	if seq, _ := s.Checkpoint(ctx(t), "forward.ga"); seq != 3 {
		t.Errorf("forward.ga = %d, want 3", seq)
	}
}

func testCanceledContext(t *testing.T, s Log) {
	c, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := s.Append(c, Submission("b1", "e", 1)); err == nil {
		t.Error("Append with a canceled context succeeded")
	}
	// Nothing half-done: the batch can be appended afterwards.
	mustAppend(t, s, Submission("b1", "e", 1))
	if n := len(readAll(t, s)); n != 1 {
		t.Errorf("%d records, want 1", n)
	}
}

func testCloseTwice(t *testing.T, s Log) {
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
