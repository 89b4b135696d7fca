// Command ingest is the ingest benchmark harness: it builds and starts the
// real `provision serve` over HTTPS on 127.0.0.1, and a baseline server
// that only decompresses and JSON-decodes the same requests, drives both
// with the same 500-event gzip batches from a concurrent load generator,
// and prints events/s, p50/p99 latency, server RSS and the ratio. A last
// phase offers twice the measured capacity and reports how the server
// sheds the excess (429/503) and its peak RSS.
//
//	go run ./bench/ingest [-duration 10s] [-concurrency 8]
package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provisionhq/provision/bench/internal/driver"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/serverproc"
)

func main() {
	baseline := flag.Bool("serve-baseline", false, "internal: run the baseline server (decompress and decode only)")
	baselineDir := flag.String("baseline-dir", "", "internal: directory of the baseline server's certificate")
	baselineProfile := flag.String("baseline-profile", "", "internal: the baseline server's CPU profile `FILE`")
	duration := flag.Duration("duration", 10*time.Second, "measuring time of each phase")
	concurrency := flag.Int("concurrency", 8, "concurrent uploads in the closed-loop phases")
	events := flag.Int("events", 500, "events per batch")
	overload := flag.Float64("overload", 2, "offered load of the overload phase, as a multiple of measured capacity")
	rounds := flag.Int("rounds", 3, "alternating baseline and serve phases; the figures are the medians")
	withPeer := flag.Bool("peer", true, "also run the OpenTelemetry Collector (bench/otelpeer) in each round")
	profiles := flag.String("cpuprofile", "", "write CPU profiles of serve and of the baseline to serve.pprof and baseline.pprof in `DIR`")
	flag.Parse()
	if *baseline {
		if err := serveBaseline(*baselineDir, *baselineProfile); err != nil {
			fmt.Fprintln(os.Stderr, "baseline:", err)
			os.Exit(1)
		}
		return
	}
	if err := bench(*duration, *concurrency, *events, *overload, max(*rounds, 1), *withPeer, *profiles); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// rss returns the resident and peak resident memory in MiB (Linux).
func rss(s *driver.Server) (cur, peak float64) {
	u := serverproc.Sample(s.PID())
	if u.RSSKiB == 0 {
		return -1, -1
	}
	return float64(u.RSSKiB) / 1024, float64(u.PeakRSSKiB) / 1024
}

// settle waits, up to maxSettle, until the machine is quiet again after a
// phase: the Collector drains its persistent queue after its phase, the
// kernel writes back what it wrote, serve may be updating its rollups.
// Without it, the baseline's phase after the Collector's ran at half
// speed. The machine, not the servers' processes, is watched, since the
// kernel's writeback counts in no process. What serve does meanwhile
// still counts in its CPU per event.
func settle() {
	const (
		window    = 250 * time.Millisecond
		quiet     = 0.25 // busy share of all cores
		maxSettle = 30 * time.Second
	)
	deadline := time.Now().Add(maxSettle)
	busy0, total0, ok := machineCPU()
	for ok && time.Now().Before(deadline) {
		time.Sleep(window)
		busy, total, _ := machineCPU()
		if total > total0 && float64(busy-busy0)/float64(total-total0) < quiet {
			return
		}
		busy0, total0 = busy, total
	}
	if ok {
		fmt.Printf("  (machine still busy after %s; measuring anyway)\n", maxSettle)
	}
}

// machineCPU reads the busy and total time of all cores from /proc/stat,
// in its ticks; false where there is no /proc/stat.
func machineCPU() (busy, total int64, ok bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i != 3 && i != 4 { // idle and iowait
			busy += n
		}
	}
	return busy, total, true
}

// besideServe runs the phase of another server than serve. When serve's
// background work (its once-a-minute rollup update) took more than a
// tenth of a core meanwhile, that phase shared the machine with serve's
// work, so it runs once more. Serve's own phases keep whatever of its
// work falls in them.
func besideServe(real *driver.Server, name string, phase func() (*result, error)) (*result, error) {
	for again := false; ; again = true {
		settle()
		before, start := cpu(real), time.Now()
		res, err := phase()
		used := cpu(real) - before
		if err != nil || again || used < time.Since(start)/10 {
			return res, err
		}
		fmt.Printf("  (%s's phase again: serve used %s of CPU during it)\n", name, used.Round(10*time.Millisecond))
	}
}

// cpu is the server's CPU time so far.
func cpu(s *driver.Server) time.Duration { return serverproc.Sample(s.PID()).CPU }

// perEvent is the CPU in microseconds per event accepted in runs.
func perEvent(cpu time.Duration, runs []*result) float64 {
	var events int64
	for _, r := range runs {
		events += r.events
	}
	if events == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(events)
}

// bodies makes n distinct gzip batches: one template, with the batch id
// (and so every event id) replaced by a counter of the same width.
func bodies(n, events int) [][]byte {
	const placeholder = "BENCHBATCH0000000000"
	tmpl := ingesttest.JSON(ingesttest.Batch(rand.New(rand.NewPCG(1, 2)), placeholder, events, time.Now()))
	out := make([][]byte, n)
	prefix := fmt.Sprintf("b%d-", time.Now().UnixNano()%1e6)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				id := fmt.Sprintf("%s%0*d", prefix, len(placeholder)-len(prefix), i)
				out[i] = ingesttest.Gzip(bytes.ReplaceAll(tmpl, []byte(placeholder), []byte(id)))
			}
		})
	}
	wg.Wait()
	return out
}

type result struct {
	events    int64
	requests  int64
	elapsed   time.Duration
	latencies []time.Duration
	codes     map[int]int
	errors    int
}

func (r *result) eventsPerSec() float64 { return float64(r.events) / r.elapsed.Seconds() }

func (r *result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	slices.Sort(r.latencies)
	return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
}

// do sends one body and returns the status and accepted count; a
// transport error has status 0.
func do(c *http.Client, addr string, body []byte) (int, int, error) {
	a, err := driver.Post(context.Background(), c, addr, body)
	if a.Status != 0 {
		return a.Status, a.Accepted, nil
	}
	return 0, 0, err
}

// closedLoop keeps concurrency requests in flight for d.
// With wrap, payloads are reused: right for the baseline, which keeps
// nothing, wrong for the real server, which would answer from the log.
// poster sends one body and returns the status and the events accepted.
type poster func(c *http.Client, addr string, body []byte) (int, int, error)

func closedLoop(s *driver.Server, payloads [][]byte, next *atomic.Int64, concurrency int, d time.Duration, wrap bool) (*result, error) {
	return closedLoopWith(do, s, payloads, next, concurrency, d, wrap)
}

func closedLoopWith(do poster, s *driver.Server, payloads [][]byte, next *atomic.Int64, concurrency int, d time.Duration, wrap bool) (*result, error) {
	c, err := s.Client(concurrency)
	if err != nil {
		return nil, err
	}
	defer c.CloseIdleConnections()
	res := &result{codes: map[int]int{}}
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if int(i) >= len(payloads) {
					if !wrap {
						return
					}
					i %= int64(len(payloads))
				}
				t0 := time.Now()
				code, accepted, err := do(c, s.Addr, payloads[i])
				lat := time.Since(t0)
				mu.Lock()
				if err != nil {
					res.errors++
				} else {
					res.codes[code]++
					res.events += int64(accepted)
					res.requests++
					res.latencies = append(res.latencies, lat)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if !wrap && int(next.Load()) >= len(payloads) {
		return res, errors.New("ran out of prepared batches; raise the count or lower the duration")
	}
	return res, nil
}

// openLoop offers rate requests per second for d regardless of answers,
// with at most maxInFlight outstanding, and samples the server's RSS.
func openLoop(s *driver.Server, payloads [][]byte, next *atomic.Int64, rate float64, d time.Duration) (*result, float64, error) {
	const maxInFlight = 256
	c, err := s.Client(maxInFlight)
	if err != nil {
		return nil, 0, err
	}
	defer c.CloseIdleConnections()
	res := &result{codes: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var peakRSS float64
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sample := time.NewTicker(100 * time.Millisecond)
	defer sample.Stop()
	dropped := 0
	for time.Since(start) < d {
		select {
		case <-sample.C:
			if cur, _ := rss(s); cur > peakRSS {
				peakRSS = cur
			}
			continue
		case <-tick.C:
		}
		i := next.Add(1) - 1
		if int(i) >= len(payloads) {
			next.Store(0) // resends are answered from the log: still work
			i = 0
		}
		select {
		case sem <- struct{}{}:
		default:
			dropped++
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			code, accepted, err := do(c, s.Addr, payloads[i])
			lat := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.errors++
				return
			}
			res.codes[code]++
			res.requests++
			res.events += int64(accepted)
			if code == 200 {
				res.latencies = append(res.latencies, lat)
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if dropped > 0 {
		fmt.Printf("  (load generator could not offer %d requests: %d already in flight)\n", dropped, maxInFlight)
	}
	return res, peakRSS, nil
}

// runtimeEnv is serve's runtime tuning (tuneGC in cmd/provision), given to
// both servers.
var runtimeEnv = []string{"GOGC=300", "GOMEMLIMIT=400MiB"}

// median is the round with the median events/s.
func median(rs []*result) *result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b *result) int { return cmp.Compare(a.eventsPerSec(), b.eventsPerSec()) })
	return s[len(s)/2]
}

func bench(d time.Duration, concurrency, events int, overload float64, rounds int, withPeer bool, profiles string) error {
	if profiles != "" {
		abs, err := filepath.Abs(profiles)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return err
		}
		profiles = abs
	}
	tmp, err := os.MkdirTemp("", "provision-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	fmt.Println("building provision ...")
	bin, err := driver.Build(tmp)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	// Enough distinct batches for the fastest plausible run (serve takes
	// up to ~500k events/s on a quiet 2-core machine): serve is sent each
	// batch once (a resend is answered from its log), the baseline wraps
	// round them.
	n := int(float64(rounds)*d.Seconds()*600000/float64(events)) + 200
	fmt.Printf("preparing %d batches of %d events ...\n", n, events)
	payloads := bodies(n, events)
	var gz int
	for _, p := range payloads[:100] {
		gz += len(p)
	}
	fmt.Printf("gzip body: %d bytes on average\n", gz/100)

	// Both servers run with serve's runtime settings (its tuneGC), set
	// here explicitly so neither is tuned differently; with -cpuprofile,
	// each writes its CPU profile there.
	env := append(os.Environ(), runtimeEnv...)
	start := func(name, dir string, cmd *exec.Cmd, profileFlag, profileFile string) (*driver.Server, error) {
		if profiles != "" {
			cmd.Args = append(cmd.Args, profileFlag, filepath.Join(profiles, profileFile))
		}
		cmd.Env = env
		return driver.Start(name, cmd, dir)
	}
	baseDir := filepath.Join(tmp, "baseline")
	os.MkdirAll(baseDir, 0o700)
	base, err := start("baseline", baseDir, exec.Command(self, "-serve-baseline", "-baseline-dir", baseDir),
		"-baseline-profile", "baseline.pprof")
	if err != nil {
		return err
	}
	defer base.Stop()
	// serve's profile covers the whole run; serve is idle outside its
	// phases, so what it shows is the closed-loop and overload load.
	dataDir := filepath.Join(tmp, "data")
	real, err := start("provision serve", dataDir, exec.Command(bin, "serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--log-level", "warn"),
		"--cpu-profile", "serve.pprof")
	if err != nil {
		return err
	}
	defer real.Stop()
	fmt.Printf("both servers: %s\n", strings.Join(runtimeEnv, " "))

	var p *peer
	if withPeer {
		fmt.Println("building the OpenTelemetry Collector peer and converting batches to OTLP ...")
		if p, err = startPeer(tmp, payloads, events, 2000); err != nil {
			fmt.Printf("peer left out: %v\n", err)
			p = nil
		} else {
			defer p.srv.Stop()
		}
	}

	warm := payloads[len(payloads)-n/10:]
	fresh := payloads[:len(payloads)-n/10]
	closedLoop(base, payloads, new(atomic.Int64), concurrency, d/5, true) // warm up
	closedLoop(real, warm, new(atomic.Int64), concurrency, d/5, false)
	// The phases alternate (A B A B …) so that the machine's drifting load
	// falls on both alike; the figures are the medians.
	var baseRuns, realRuns, peerRuns []*result
	var baseNext, realNext, peerNext atomic.Int64
	if p != nil {
		closedLoopWith(postOTLP(events), p.srv, p.payloads, new(atomic.Int64), concurrency, d/5, true)
	}
	baseCPU, realCPU := cpu(base), cpu(real)
	for r := range rounds {
		b, err := besideServe(real, "baseline", func() (*result, error) {
			return closedLoop(base, payloads, &baseNext, concurrency, d, true)
		})
		if err != nil {
			return err
		}
		settle()
		s, err := closedLoop(real, fresh, &realNext, concurrency, d, false)
		if err != nil {
			return err
		}
		fmt.Printf("round %d: baseline %.0f events/s, serve %.0f events/s (%.0f%%)\n", r+1, b.eventsPerSec(), s.eventsPerSec(), 100*s.eventsPerSec()/b.eventsPerSec())
		baseRuns, realRuns = append(baseRuns, b), append(realRuns, s)
		if p != nil {
			o, err := besideServe(real, "Collector", func() (*result, error) {
				return closedLoopWith(postOTLP(events), p.srv, p.payloads, &peerNext, concurrency, d, true)
			})
			if err != nil {
				return err
			}
			fmt.Printf("round %d: OpenTelemetry Collector %.0f events/s (%.0f%%)\n", r+1, o.eventsPerSec(), 100*o.eventsPerSec()/b.eventsPerSec())
			peerRuns = append(peerRuns, o)
		}
	}
	baseCPU, realCPU = cpu(base)-baseCPU, cpu(real)-realCPU
	baseRes, realRes := median(baseRuns), median(realRuns)
	baseRSS, basePeak := rss(base)
	base.Stop()
	report("baseline (decompress + the server's decoder), median round", baseRes, baseRSS, basePeak)
	realRSS, realPeak := rss(real)
	report("provision serve (durable ingest), median round", realRes, realRSS, realPeak)
	fmt.Printf("ratio of medians: %.0f%% of baseline events/s\n", 100*realRes.eventsPerSec()/baseRes.eventsPerSec())
	// The medians leave out the round in which serve's once-a-minute
	// rollup update ran; its CPU over all rounds, idle phases included,
	// does not.
	baseUS, realUS := perEvent(baseCPU, baseRuns), perEvent(realCPU, realRuns)
	fmt.Printf("server CPU per accepted event over all rounds (background jobs included): baseline %.2f µs, serve %.2f µs (%.0f%%)\n",
		baseUS, realUS, 100*baseUS/realUS)
	if p != nil {
		peerRes := median(peerRuns)
		peerRSS, peerPeak := rss(p.srv)
		report("OpenTelemetry Collector (OTLP/HTTP, persistent queue with fsync), median round", peerRes, peerRSS, peerPeak)
		fmt.Printf("ratio of medians: collector %.0f%% of baseline; serve %.0f%% of the collector\n", 100*peerRes.eventsPerSec()/baseRes.eventsPerSec(), 100*realRes.eventsPerSec()/peerRes.eventsPerSec())
	}
	fmt.Println()

	rate := overload * float64(realRes.requests) / realRes.elapsed.Seconds()
	fmt.Printf("overload: offering %.0f requests/s (%.1f× capacity) for %s ...\n", rate, overload, d)
	more := bodies(int(rate*d.Seconds())+100, events)
	var next2 atomic.Int64
	ovRes, peak, err := openLoop(real, more, &next2, rate, d)
	if err != nil {
		return err
	}
	_, hwm := rss(real)
	report("provision serve under overload", ovRes, peak, hwm)
	return nil
}

func report(name string, r *result, rss, peak float64) {
	fmt.Printf("%s:\n", name)
	fmt.Printf("  %.0f events/s, %.1f requests/s over %s\n", r.eventsPerSec(), float64(r.requests)/r.elapsed.Seconds(), r.elapsed.Round(time.Millisecond))
	fmt.Printf("  latency of 200s: p50 %s, p99 %s\n", r.percentile(0.50).Round(time.Microsecond), r.percentile(0.99).Round(time.Microsecond))
	codes := make([]int, 0, len(r.codes))
	for c := range r.codes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", r.codes[c], c))
	}
	fmt.Printf("  answers: %s; transport errors: %d\n", strings.Join(parts, " "), r.errors)
	fmt.Printf("  server RSS: %.0f MiB now, %.0f MiB peak\n", rss, peak)
}
