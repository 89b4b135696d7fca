package outbox

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/provisionhq/provision"
)

const crashChildEnv = "PROVISION_OUTBOX_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func event(id, typ string) *provision.Event {
	return &provision.Event{ID: id, Type: typ, Time: time.Unix(1_780_000_000, 0).UTC(), Fields: map[string]any{"error.type": "crash", "error.code": id}}
}

func open(t testing.TB, dir string, l Limits, now func() time.Time) *Store {
	t.Helper()
	s, err := Open(filepath.Join(dir, "outbox.db"), l, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAggregatesRepeatsIntoOneEvent(t *testing.T) {
	s := open(t, t.TempDir(), Limits{}, nil)
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Add(event(fmt.Sprint("e", i), "ui_error"), "eu", "same"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := s.Add(event("other", "ui_error"), "eu", "other"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pending(100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d events, want 2", len(got))
	}
	if c := got[0].Event.Fields["event.count"]; c != int64(50) {
		t.Errorf("count = %v, want 50", c)
	}
	if c := got[1].Event.Fields["event.count"]; c != int64(1) {
		t.Errorf("count = %v, want 1", c)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestInflightEventsTakeNoMoreRepeats(t *testing.T) {
	s := open(t, t.TempDir(), Limits{}, nil)
	defer s.Close()
	for range 3 {
		if err := s.Add(event("a", "ui_error"), "eu", "k"); err != nil {
			t.Fatal(err)
		}
	}
	in, err := s.StartBatch(10, 1<<20, func(e []Entry) (*Inflight, error) {
		if len(e) != 1 || e[0].Event.Fields["event.count"] != int64(3) {
			t.Errorf("batch built of %+v", e)
		}
		return &Inflight{BatchID: "b1", Seqs: []uint64{e[0].Seq}, Body: []byte(`{}`)}, nil
	})
	if err != nil || in.BatchID != "b1" {
		t.Fatal(in, err)
	}
	// While a batch is in flight it is returned again, unchanged.
	again, _ := s.StartBatch(10, 1<<20, func([]Entry) (*Inflight, error) { t.Error("built a second batch"); return nil, nil })
	if again == nil || again.BatchID != "b1" {
		t.Fatalf("in flight: %+v", again)
	}
	if err := s.Add(event("b", "ui_error"), "eu", "k"); err != nil {
		t.Fatal(err)
	}
	p, _ := s.Pending(10, 1<<20)
	if len(p) != 2 || p[0].Event.Fields["event.count"] != int64(3) || p[1].Event.Fields["event.count"] != int64(1) {
		t.Fatalf("pending after inflight = %+v", p)
	}
	if err := s.Complete([]uint64{p[0].Seq}, []byte(`{"batch":"b1"}`)); err != nil {
		t.Fatal(err)
	}
	p, _ = s.Pending(10, 1<<20)
	if len(p) != 1 || p[0].Event.ID != "b" {
		t.Fatalf("pending after complete = %+v", p)
	}
	in, _ = s.GetInflight()
	if in != nil {
		t.Fatal("inflight batch kept after completion")
	}
	sent, _ := s.Sent(0)
	if len(sent) != 1 || string(sent[0]) != `{"batch":"b1"}` {
		t.Fatalf("sent log = %q", sent)
	}
}

func TestBoundsDropOldestFirstAndCount(t *testing.T) {
	now := time.Unix(1_780_000_000, 0)
	clock := func() time.Time { return now }
	s := open(t, t.TempDir(), Limits{MaxEvents: 3, MaxAge: time.Hour}, clock)
	defer s.Close()
	for i := range 5 {
		if err := s.Add(event(fmt.Sprint("e", i), "ui_error"), "eu", ""); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := s.Pending(10, 1<<20)
	if len(p) != 3 || p[0].Event.ID != "e2" {
		t.Fatalf("after count bound: %d events, first %s", len(p), p[0].Event.ID)
	}
	st, _ := s.Stats()
	if st.Dropped != 2 || st.Events != 3 {
		t.Fatalf("stats = %+v", st)
	}
	now = now.Add(2 * time.Hour)
	if err := s.Add(event("late", "ui_error"), "eu", ""); err != nil {
		t.Fatal(err)
	}
	p, _ = s.Pending(10, 1<<20)
	if len(p) != 1 || p[0].Event.ID != "late" {
		t.Fatalf("after age bound: %+v", p)
	}
	st, _ = s.Stats()
	if st.Dropped != 5 {
		t.Fatalf("dropped = %d, want 5", st.Dropped)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestByteBound(t *testing.T) {
	s := open(t, t.TempDir(), Limits{MaxBytes: 1000}, nil)
	defer s.Close()
	for i := range 40 {
		if err := s.Add(event(fmt.Sprint("e", i), "ui_error"), "eu", ""); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := s.Stats()
	if st.Bytes > 1000 || st.Dropped == 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestWithdrawEmptiesOutboxAndKeepsDeletionUnderBounds(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Limits{MaxEvents: 2}, nil)
	for i := range 3 {
		_ = s.Add(event(fmt.Sprint("e", i), "ui_error"), "eu", "k"+fmt.Sprint(i))
	}
	if _, err := s.AddIfChanged(event("os", "os"), "eu", "os", []byte("d1")); err != nil {
		t.Fatal(err)
	}
	del := &Deletion{InstallationID: "11111111-1111-4111-8111-111111111111", RequestID: "r1", Queued: time.Now()}
	if err := s.Withdraw([]byte(`{"accepted":false}`), del); err != nil {
		t.Fatal(err)
	}
	// Fill past the bounds: the deletion request must survive.
	for i := range 10 {
		_ = s.Add(event(fmt.Sprint("n", i), "ui_error"), "eu", "")
	}
	s.Close()
	s = open(t, dir, Limits{MaxEvents: 2}, nil)
	defer s.Close()
	d, err := s.Deletions()
	if err != nil || len(d) != 1 || d[0].RequestID != "r1" {
		t.Fatalf("deletions after restart = %+v, %v", d, err)
	}
	if added, _ := s.AddIfChanged(event("os", "os"), "eu", "os", []byte("d1")); !added {
		t.Fatal("last-queued digest survived withdrawal")
	}
	if err := s.CompleteDeletion("r1", nil); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Deletions(); len(d) != 0 {
		t.Fatal("deletion kept after completion")
	}
}

func TestSentLogIsBounded(t *testing.T) {
	s := open(t, t.TempDir(), Limits{SentEntries: 3}, nil)
	defer s.Close()
	for i := range 10 {
		if err := s.AppendSent(fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := s.Sent(0)
	if len(all) != 3 || string(all[0]) != "7" || string(all[2]) != "9" {
		t.Fatalf("sent = %q", all)
	}
	last, _ := s.Sent(1)
	if len(last) != 1 || string(last[0]) != "9" {
		t.Fatalf("last = %q", last)
	}
}

// crashChild records events as fast as it can from several goroutines and
// prints each one only after Add has returned, until it is killed.
func crashChild(path string) {
	s, err := Open(path, Limits{MaxEvents: 1 << 30, MaxBytes: 1 << 40, MaxAge: 1 << 62}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	run := os.Getenv("PROVISION_OUTBOX_CRASH_RUN")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("r%s-g%d-%d", run, g, i)
				key := ""
				if g%2 == 0 {
					key = fmt.Sprintf("agg-%d", g)
				}
				if err := s.Add(event(id, "ui_error"), "eu", key); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				if key == "" {
					fmt.Fprintln(out, "id", id)
				} else {
					fmt.Fprintln(out, "key", key)
				}
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestSIGKILLLosesNothingAcknowledged kills a writer at random instants and
// checks that every acknowledged event is on disk and the file is sound.
func TestSIGKILLLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	acked := map[string]bool{}
	aggAcked := map[string]int64{}
	for run := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path, fmt.Sprintf("PROVISION_OUTBOX_CRASH_RUN=%d", run))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for first := true; sc.Scan(); first = false {
				if first {
					// The random instant counts from the first
					// acknowledgement, so a slow start on a loaded
					// machine still leaves the child time to write.
					time.AfterFunc(time.Duration(100+rand.IntN(400))*time.Millisecond, func() {
						_ = cmd.Process.Signal(syscall.SIGKILL)
					})
				}
				lines <- sc.Text()
			}
			close(lines)
		}()
		for l := range lines {
			kind, v, _ := strings.Cut(l, " ")
			if kind == "id" {
				acked[v] = true
			} else {
				aggAcked[v]++
			}
		}
		_ = cmd.Wait()

		s, err := Open(path, Limits{MaxEvents: 1 << 30, MaxBytes: 1 << 40, MaxAge: 1 << 62}, nil)
		if err != nil {
			t.Fatalf("run %d: reopen after kill: %v", run, err)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		all, err := s.Pending(1<<30, 1<<40)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		have := map[string]bool{}
		haveAgg := map[string]int64{}
		for _, e := range all {
			if c, ok := e.Event.Fields["event.count"]; ok {
				// Each run's aggregated events share a key with the earlier
				// runs' ones, so the counts of one key add up.
				haveAgg[aggKeyOf(e.Event.ID)] += c.(int64)
			} else {
				have[e.Event.ID] = true
			}
		}
		for id := range acked {
			if !have[id] {
				t.Fatalf("run %d: acknowledged event %s lost", run, id)
			}
		}
		for k, n := range aggAcked {
			if haveAgg[k] < n {
				t.Fatalf("run %d: key %s acknowledged %d times, stored count %d", run, k, n, haveAgg[k])
			}
		}
		t.Logf("run %d: %d distinct and %d aggregated acknowledgements survived", run, len(acked), len(aggAcked))
	}
	if len(acked) == 0 {
		t.Fatal("the child acknowledged nothing; the test proved nothing")
	}
}

// aggKeyOf maps an event id of the crash child (r<run>-g<g>-<i>) to the
// aggregation key it was recorded under.
func aggKeyOf(id string) string {
	parts := strings.Split(id, "-")
	return "agg-" + strings.TrimPrefix(parts[1], "g")
}
