package sqlite

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/storetest"
)

// The committing appender waits for company only after a group of more
// than one: a lone uploader is never delayed, and the wait ends as soon as
// a group of one shows the uploads no longer arrive together.
func TestCommitDelayOnlyAfterAGroup(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "provision.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var waits []time.Duration // appended under appendMu
	s.wait = func(d time.Duration) { waits = append(waits, d) }
	seq := 0
	appendOne := func() error {
		seq++
		_, _, err := s.Append(ctx, storetest.Submission(fmt.Sprintf("b%d", seq), fmt.Sprintf("e%d-", seq), 3))
		return err
	}

	for range 3 {
		if err := appendOne(); err != nil {
			t.Fatal(err)
		}
	}
	if len(waits) != 0 {
		t.Fatalf("sequential appends waited %v", waits)
	}

	// Three appends queue while the writer is busy: one group of three.
	s.appendMu.Lock()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := range 3 {
		sub := storetest.Submission(fmt.Sprintf("g%d", i), fmt.Sprintf("g%d-", i), 3)
		wg.Go(func() {
			_, _, err := s.Append(ctx, sub)
			errs <- err
		})
	}
	for queued := 0; queued < 3; time.Sleep(time.Millisecond) {
		s.queueMu.Lock()
		queued = len(s.queue)
		s.queueMu.Unlock()
	}
	s.appendMu.Unlock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.lastGroup != 3 {
		t.Fatalf("the queued appends were committed in groups, the last of %d; want one group of 3", s.lastGroup)
	}
	if len(waits) != 0 {
		t.Fatalf("the first group waited %v", waits)
	}

	// The next leader waits once; its group of one ends the waiting.
	for range 2 {
		if err := appendOne(); err != nil {
			t.Fatal(err)
		}
	}
	if len(waits) != 1 || waits[0] != commitDelay {
		t.Fatalf("waits after a group of three = %v, want one of %v", waits, commitDelay)
	}
	if h, err := s.Head(ctx); err != nil || h != 8*3 {
		t.Fatalf("Head = %d, %v; want %d", h, err, 8*3)
	}
}
