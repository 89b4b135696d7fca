// Command attack runs the hostile-client attacks of internal/ingest's
// attack suite for longer and prints the figures: normal clients' success
// and latency under many slow connections, peak memory under amplifying
// requests, and the rate one client gets through to submission and
// deletion. The server is the real ingest handler over SQLite and TLS on
// 127.0.0.1, in this process, under the memory limit `provision serve`
// sets.
//
//	go run ./bench/attack -slow 500 -duration 60s
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/ingest/attack"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
)

func main() {
	slow := flag.Int("slow", 500, "slow requests: four fifths HTTP/1.1 connections, one fifth HTTP/2 streams")
	duration := flag.Duration("duration", 60*time.Second, "how long the slow requests trickle")
	workers := flag.Int("workers", 4, "normal clients")
	limit := flag.Int64("memory-limit", 400<<20, "the server's memory limit (GOMEMLIMIT), bytes")
	flag.Parse()
	if err := run(*slow, *duration, *workers, *limit); err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(1)
	}
}

func run(slow int, duration time.Duration, workers int, limit int64) error {
	debug.SetMemoryLimit(limit)
	dir, err := os.MkdirTemp("", "attack")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	l := ingest.DefaultLimits()
	rig, err := attack.NewRig(ctx, dir, l)
	if err != nil {
		return err
	}
	defer rig.Close()

	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 1))
	seq := 0
	batch := func(n int) []byte {
		mu.Lock()
		defer mu.Unlock()
		seq++
		return ingesttest.Gzip(ingesttest.JSON(ingesttest.Batch(rng, fmt.Sprintf("b-%d", seq), n, time.Now())))
	}
	normal := func(d time.Duration) *attack.NormalResult {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return attack.Normal(ctx, rig, workers, 1<<30, func(int) []byte { return batch(100) })
	}
	describe := func(r *attack.NormalResult) string {
		slices.Sort(r.Latency)
		p := func(q float64) time.Duration {
			if len(r.Latency) == 0 {
				return 0
			}
			return r.Latency[int(q*float64(len(r.Latency)-1))].Round(time.Millisecond)
		}
		return fmt.Sprintf("%d of %d uploads succeeded (%.1f%%), p50 %v, p99 %v, failures %v",
			r.OK, r.Total, 100*float64(r.OK)/float64(max(r.Total, 1)), p(0.5), p(0.99), r.Codes)
	}

	fmt.Printf("slow bodies: %d slow requests for %v, %d normal clients\n", slow, duration, workers)
	base := normal(duration / 4)
	fmt.Printf("  without attack: %s\n", describe(base))
	actx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	var s attack.SlowResult
	go func() { defer close(done); attack.SlowLoris(actx, rig, slow-slow/5, slow/5, time.Second, &s) }()
	time.Sleep(2 * time.Second)
	mem := attack.SampleMemory(10 * time.Millisecond)
	under := normal(duration)
	mem.Stop()
	stop()
	<-done
	fmt.Printf("  under attack:   %s\n", describe(under))
	fmt.Printf("  slow requests: %d opened, %d cut off, %d completed; peak RSS %d MiB\n", s.Opened, s.CutOff, s.Completed, mem.PeakRSS>>20)
	baseRate := float64(base.OK) / float64(max(base.Total, 1))
	underRate := float64(under.OK) / float64(max(under.Total, 1))
	fmt.Printf("  normal clients keep %.1f%% of their success rate\n", 100*underRate/baseRate)

	body := attack.AmplificationBody(2_500_000)
	client := rig.Client(true)
	mem = attack.SampleMemory(5 * time.Millisecond)
	a := attack.Post(ctx, client, rig.HTTP.URL, "/v1/submit", "192.0.2.50", body, "")
	mem.Stop()
	fmt.Printf("amplification (%d KB of {}): %d %s, peak RSS %d MiB, peak heap %d MiB (limit %d MiB)\n",
		len(body)>>10, a.Status, a.Code, mem.PeakRSS>>20, mem.PeakHeap>>20, limit>>20)
	mem = attack.SampleMemory(5 * time.Millisecond)
	var wg sync.WaitGroup
	codes := make([]string, 8)
	for i := range 8 {
		wg.Go(func() {
			a := attack.Post(ctx, client, rig.HTTP.URL, "/v1/submit", fmt.Sprintf("192.0.2.%d", 60+i), body, "")
			codes[i] = fmt.Sprintf("%d %s", a.Status, a.Code)
		})
	}
	wg.Wait()
	mem.Stop()
	fmt.Printf("8 in parallel: %v, peak RSS %d MiB, peak heap %d MiB\n", codes, mem.PeakRSS>>20, mem.PeakHeap>>20)

	sub := attack.Flood(ctx, rig, "/v1/submit", "192.0.2.80", 8, 10*time.Second, func(int) []byte { return batch(1) })
	del := attack.Flood(ctx, rig, "/v1/deletion", "192.0.2.81", 8, 10*time.Second, attack.DeletionBody)
	fmt.Printf("one client, 8 parallel for 10s: submit %.1f/s allowed of %.0f/s answered; deletion %.1f/s allowed of %.0f/s answered\n",
		sub.AllowedPerSecond(), float64(sub.Answered)/sub.Elapsed.Seconds(), del.AllowedPerSecond(), float64(del.Answered)/del.Elapsed.Seconds())
	return nil
}
