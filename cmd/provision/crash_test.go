//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/sqlite"
)

// TestKillDuringUploadLosesNothing runs the real binary, uploads batches
// from several concurrent agents, and kills the server with SIGKILL at
// random moments. After every kill, every event of every confirmed batch
// must be in the store; after the agents resend what was not confirmed,
// the stored event ids must be exactly the confirmed ones, each once.
func TestKillDuringUploadLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the server binary")
	}
	bin := filepath.Join(t.TempDir(), "provision")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(t.TempDir(), "data")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))

	type batch struct {
		id  string
		ids []string
		gz  []byte
	}
	var (
		mu        sync.Mutex
		confirmed = map[string]bool{} // event id → confirmed
		pending   []*batch            // sent, not confirmed
		next      int
	)
	newBatch := func() *batch {
		mu.Lock()
		next++
		id := fmt.Sprintf("crash-%d", next)
		seed := rng.Uint64()
		mu.Unlock()
		b := ingesttest.Batch(rand.New(rand.NewPCG(seed, 1)), id, 50, time.Now())
		out := &batch{id: id, gz: ingesttest.Gzip(ingesttest.JSON(b))}
		for _, ev := range b.Events {
			out.ids = append(out.ids, ev.ID)
		}
		return out
	}
	// send returns whether the server confirmed the batch.
	send := func(c *http.Client, addr string, b *batch) bool {
		status, body, err := submit(c, addr, b.gz)
		if err != nil || status != 200 {
			return false
		}
		var resp struct {
			BatchID  string `json:"batch_id"`
			Accepted int
		}
		if json.Unmarshal(body, &resp) != nil || resp.BatchID != b.id || resp.Accepted != len(b.ids) {
			t.Errorf("batch %s answered %s", b.id, body)
			return false
		}
		mu.Lock()
		for _, id := range b.ids {
			confirmed[id] = true
		}
		mu.Unlock()
		return true
	}

	start := func() (*exec.Cmd, string, *lockedBuffer) {
		out := &lockedBuffer{}
		cmd := exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0")
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, waitListening(t, out.String), out
	}
	stored := func() map[string]int {
		s, err := sqlite.Open(context.Background(), filepath.Join(data, "provision.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out := map[string]int{}
		var after int64
		for {
			recs, err := s.Read(context.Background(), after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			for _, r := range recs {
				out[r.Event.ID]++
			}
			after = recs[len(recs)-1].Seq
		}
		return out
	}

	deadline := time.Now().Add(40 * time.Second)
	for round := 0; round < 6 && time.Now().Before(deadline); round++ {
		cmd, addr, out := start()
		client := pinnedClient(t, data)
		// Agents first resend what was never confirmed, then send new work.
		mu.Lock()
		queue := pending
		pending = nil
		mu.Unlock()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		work := make(chan *batch, len(queue))
		for _, b := range queue {
			work <- b
		}
		for range 4 {
			wg.Go(func() {
				for {
					var b *batch
					select {
					case <-stop:
						return
					case b = <-work:
					default:
						b = newBatch()
					}
					if !send(client, addr, b) {
						mu.Lock()
						pending = append(pending, b)
						mu.Unlock()
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
						}
					}
				}
			})
		}
		mu.Lock()
		pause := time.Duration(150+rng.IntN(500)) * time.Millisecond
		mu.Unlock()
		time.Sleep(pause)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		close(stop)
		wg.Wait()
		client.CloseIdleConnections()
		// Anything left in the queue was never sent this round.
		close(work)
		for b := range work {
			pending = append(pending, b)
		}

		have := stored()
		mu.Lock()
		for id := range confirmed {
			if have[id] != 1 {
				t.Fatalf("round %d: confirmed event %s stored %d times\n%s", round, id, have[id], out)
			}
		}
		t.Logf("round %d: %d events confirmed, %d stored, %d batches unconfirmed", round, len(confirmed), len(have), len(pending))
		mu.Unlock()
	}

	// Last start: resend everything unconfirmed until confirmed, then stop.
	cmd, addr, _ := start()
	client := pinnedClient(t, data)
	for _, b := range pending {
		if !send(client, addr, b) {
			t.Fatalf("resend of %s failed", b.id)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	have := stored()
	if len(have) != len(confirmed) {
		t.Errorf("%d events stored, %d confirmed", len(have), len(confirmed))
	}
	for id, n := range have {
		if n != 1 || !confirmed[id] {
			t.Errorf("event %s stored %d times, confirmed %v", id, n, confirmed[id])
		}
	}
	if len(confirmed) == 0 {
		t.Fatal("nothing was confirmed; the test proved nothing")
	}
}
