package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/bench/internal/driver"
)

// The HTTP mode drives real `provision serve` processes over HTTPS: the
// embedded mode (SQLite) and the scale-out mode (--log nats://… --store
// postgres://…) with `provision worker` processes, from the same load
// generator and the same kind of batches, in one run. It needs the serve
// command with its scale-out flags (see docs/scale-out.md).

type proc struct {
	srv    *driver.Server // for a worker, only its process
	client *http.Client   // nil for a worker
}

// startProc starts a provision command; when dir is set it is a server
// whose address and certificate are read back.
func startProc(bin string, dir string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	if dir == "" {
		cmd.Stderr = os.Stderr
		p := &proc{srv: &driver.Server{Name: args[0]}}
		return p, p.srv.Launch(cmd)
	}
	srv, err := driver.Start(args[0], cmd, dir)
	if err != nil {
		return nil, err
	}
	client, err := srv.Client(256)
	if err != nil {
		srv.Stop()
		return nil, err
	}
	return &proc{srv: srv, client: client}, nil
}

func (p *proc) stop() { _ = p.srv.Stop() }

// bodies returns n gzip bodies of valid batches (os events of the
// reference manifest) with unique batch and event ids.
func bodies(prefix string, n, events int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	oses := []string{"11 23H2", "10 22H2", "14.5", "12 (bookworm)"}
	types := []string{"windows", "windows", "macos", "linux"}
	now := time.Now().UTC().Truncate(time.Millisecond)
	out := make([][]byte, n)
	for i := range out {
		id := fmt.Sprintf("%s-%d", prefix, i)
		b := provision.Batch{ID: id, InstallationID: fmt.Sprintf("3f0c8a52-1d7e-4b8a-9c1e-%012x", r.Uint64()&0xffffffffffff),
			Region: provision.RegionEU, ManifestVersion: "2026.11.1", SentAt: now, Events: make([]provision.Event, events)}
		for j := range b.Events {
			k := r.IntN(len(oses))
			b.Events[j] = provision.Event{ID: fmt.Sprintf("%s-%d", id, j), Type: "os", Time: now.Add(-time.Duration(j) * time.Second),
				Fields: map[string]any{"os.type": types[k], "os.version": oses[k]}}
		}
		raw, _ := json.Marshal(b)
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(raw)
		_ = zw.Close()
		out[i] = buf.Bytes()
	}
	return out
}

// drive posts the bodies to the servers round-robin from concurrency
// goroutines for d, and returns the events accepted and the 429/503s.
func drive(servers []*proc, payloads [][]byte, concurrency int, d time.Duration) (accepted, shed int64, err error) {
	var next, acc, sh atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for g := range concurrency {
		wg.Go(func() {
			s := servers[g%len(servers)]
			for time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if int(i) >= len(payloads) {
					return
				}
				a, err := driver.Post(context.Background(), s.client, s.srv.Addr, payloads[i])
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if a.Shed {
					sh.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				acc.Add(int64(a.Accepted))
			}
		})
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return acc.Load(), sh.Load(), e
	}
	return acc.Load(), sh.Load(), nil
}

type httpFigures struct {
	label          string
	ingestRate     float64
	storeRate      float64
	lagP50, lagP99 time.Duration
	drain          time.Duration
	shed           int64
}

func httpHarness(ctx context.Context, o options, runs []int) error {
	tmp, err := os.MkdirTemp("", "provision-scaleout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := driver.Build(tmp)
	if err != nil {
		return err
	}
	fmt.Printf("scale-out bench over HTTPS: %d events per batch, %d uploads in flight, %v per run\n", o.events, o.concurrency, o.duration)
	per := int(o.duration.Seconds()*150000/float64(o.events)) + 100

	var all []httpFigures
	// Embedded: one serve with SQLite, stored when answered.
	dir := filepath.Join(tmp, "embedded")
	s, err := startProc(bin, dir, "serve", "--data", dir, "--listen", "127.0.0.1:0", "--log-level", "warn")
	if err != nil {
		return err
	}
	// The bodies are built before the clock starts: gzipping them is the
	// client's work, not the server's.
	embBodies := bodies("emb", per, o.events)
	begin := time.Now()
	acc, shed, err := drive([]*proc{s}, embBodies, o.concurrency, o.duration)
	el := time.Since(begin)
	s.stop()
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	all = append(all, httpFigures{label: "embedded (SQLite) 1 node", ingestRate: float64(acc) / el.Seconds(), storeRate: float64(acc) / el.Seconds(), shed: shed})

	for _, n := range runs {
		f, err := httpScaleOut(ctx, o, bin, tmp, n, per)
		if err != nil {
			return err
		}
		all = append(all, f)
	}
	fmt.Printf("%-34s %12s %12s %9s %9s %9s %6s\n", "mode", "ingest ev/s", "stored ev/s", "lag p50", "lag p99", "drain", "503s")
	for _, f := range all {
		fmt.Printf("%-34s %12.0f %12.0f %9v %9v %9v %6d\n", f.label, f.ingestRate, f.storeRate,
			f.lagP50.Round(time.Millisecond), f.lagP99.Round(time.Millisecond), f.drain.Round(time.Millisecond), f.shed)
	}
	return nil
}

func httpScaleOut(ctx context.Context, o options, bin, tmp string, n, per int) (httpFigures, error) {
	f := httpFigures{label: fmt.Sprintf("scale-out %d ingest × %d workers", n, n)}
	id := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	o.stream, o.schema = "BENCH_"+strings.ToUpper(id), "bench_"+id
	lc := logConfig(o)
	defer dropRun(o)
	common := []string{"--log", o.natsURL, "--store", o.pgURL, "--schema", o.schema, "--stream", lc.Stream, "--subject", lc.Subject}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	var servers []*proc
	for i := range n {
		w, err := startProc(bin, "", append([]string{"worker", "--stats-interval", "0", "--rollup-interval", "0", "--instance", strconv.Itoa(i), "--batch", strconv.Itoa(o.batch)}, common...)...)
		if err != nil {
			return f, err
		}
		procs = append(procs, w)
		dir := filepath.Join(tmp, fmt.Sprintf("ingest-%s-%d", id, i))
		s, err := startProc(bin, dir, append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--log-level", "warn"}, common...)...)
		if err != nil {
			return f, err
		}
		procs = append(procs, s)
		servers = append(servers, s)
	}
	cons, conn, closeObs, err := observe(ctx, lc, o.pgURL)
	if err != nil {
		return f, err
	}
	defer closeObs()

	sampler := sampleLag(ctx, conn, o.schema)
	payloads := bodies("so-"+id, per, o.events) // before the clock, as above
	begin := time.Now()
	acc, shed, err := drive(servers, payloads, o.concurrency, o.duration)
	upload := time.Since(begin)
	if err != nil {
		sampler.Stop()
		return f, fmt.Errorf("scale-out: %w", err)
	}
	if f.drain, err = drain(ctx, cons); err != nil {
		return f, err
	}
	lags := sampler.Stop()
	var stored int64
	if err := conn.QueryRow(ctx, `SELECT seq FROM `+o.schema+`.log_head`).Scan(&stored); err != nil {
		return f, err
	}
	if stored < acc {
		return f, fmt.Errorf("%d events accepted, only %d stored", acc, stored)
	}
	f.ingestRate = float64(acc) / upload.Seconds()
	f.storeRate = float64(stored) / time.Since(begin).Seconds()
	f.shed = shed
	f.lagP50, f.lagP99, _ = percentiles(lags)
	return f, nil
}
