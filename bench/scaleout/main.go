// Command scaleout measures the scale-out mode on one machine: ingest
// processes append submissions to NATS JetStream, worker processes move them
// into PostgreSQL, and the harness reports events per second at both ends
// and the end-to-end lag (from the ingest stamp to the committed row), for
// one ingest process and one worker, then two and two, plus the CPU time
// each engine and role used, which shows what saturates first.
//
//	go run ./bench/scaleout -nats nats://127.0.0.1:4222 -postgres postgres://postgres@127.0.0.1:5432/test
//
// Each run uses its own stream and schema and removes them at the end.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/cputime"
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/worker"
)

type options struct {
	role        string
	natsURL     string
	pgURL       string
	stream      string
	schema      string
	duration    time.Duration
	concurrency int
	events      int
	id          int
	nodes       string
	batch       int
	loops       int
	rate        int
	http        bool
}

func main() {
	var o options
	flag.StringVar(&o.role, "role", "harness", "harness, ingest or worker (the last two are started by the harness)")
	flag.StringVar(&o.natsURL, "nats", envOr("PROVISION_TEST_NATS", "nats://127.0.0.1:4222"), "NATS URL")
	flag.StringVar(&o.pgURL, "postgres", envOr("PROVISION_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"), "PostgreSQL URL")
	flag.StringVar(&o.stream, "stream", "", "stream name (set by the harness)")
	flag.StringVar(&o.schema, "schema", "", "schema name (set by the harness)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long the ingest processes upload in each run")
	flag.IntVar(&o.concurrency, "concurrency", 64, "concurrent uploads per ingest process")
	flag.IntVar(&o.events, "events", 20, "events per submission")
	flag.IntVar(&o.batch, "batch", 500, "submissions per worker transaction")
	flag.IntVar(&o.loops, "loops", worker.DefaultLoops, "fetch-and-write loops per worker process (provision worker --concurrency)")
	flag.IntVar(&o.rate, "rate", 0, "events per second per ingest process (0: as fast as acknowledged)")
	flag.BoolVar(&o.http, "http", false, "drive real `provision serve` processes over HTTPS, the embedded mode first")
	flag.IntVar(&o.id, "id", 0, "process number (set by the harness)")
	flag.StringVar(&o.nodes, "nodes", "1,2", "runs: how many ingest processes and workers each, comma separated")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch o.role {
	case "harness":
		err = harness(ctx, o)
	case "ingest":
		err = ingest(ctx, o)
	case "worker":
		err = runWorker(ctx, o)
	default:
		err = fmt.Errorf("unknown role %q", o.role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scaleout:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func logConfig(o options) natslog.Config {
	c := natslog.DefaultConfig(o.natsURL)
	c.Name = "bench-" + o.role
	c.Stream, c.Subject = o.stream, strings.ToLower(o.stream)+".submissions"
	c.DeadStream, c.DeadSubject = o.stream+"_DEAD", strings.ToLower(o.stream)+".dead"
	c.MaxAge = time.Hour
	return c
}

func storeConfig(o options) postgres.Config {
	c := postgres.DefaultConfig(o.pgURL)
	c.Schema, c.ApplicationName, c.MaxConns = o.schema, "bench-"+o.schema, 4
	return c
}

// result is what a child prints when it stops.
type result struct {
	Role        string  `json:"role"`
	Events      int64   `json:"events"`
	Submissions int64   `json:"submissions"`
	Unavailable int64   `json:"unavailable"`
	CPUSeconds  float64 `json:"cpu_seconds"`
}

// ingest appends submissions as an ingest node does after validation, at
// the given concurrency, for the duration.
func ingest(ctx context.Context, o options) error {
	l, err := natslog.Open(ctx, logConfig(o))
	if err != nil {
		return err
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var events, subs, unav, n atomic.Int64
	var wg sync.WaitGroup
	limit := rate.NewLimiter(rate.Inf, o.events)
	if o.rate > 0 {
		limit = rate.NewLimiter(rate.Limit(o.rate), max(o.rate/10, o.events))
	}
	for range o.concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				if limit.WaitN(ctx, o.events) != nil {
					return
				}
				sub := submission(fmt.Sprintf("%s-%d-%d", o.stream, o.id, n.Add(1)), o.events)
				_, _, err := l.Append(ctx, sub)
				switch {
				case err == nil:
					events.Add(int64(len(sub.Events)))
					subs.Add(1)
				case errors.Is(err, provision.ErrUnavailable):
					unav.Add(1)
					time.Sleep(50 * time.Millisecond) // as an agent told to retry later
				}
			}
		})
	}
	wg.Wait()
	return report(result{Role: "ingest", Events: events.Load(), Submissions: subs.Load(), Unavailable: unav.Load()})
}

func submission(batch string, n int) *provision.Submission {
	now := time.Now().UTC()
	s := &provision.Submission{
		BatchID: batch, InstallationID: "3f0c8a52-1d7e-4b8a-9c1e-" + fmt.Sprintf("%012d", len(batch)), Region: "eu",
		ManifestVersion: "2026.11.1", ReceivedAt: now,
		Response: []byte(fmt.Sprintf(`{"batch_id":%q,"accepted":%d,"rejected":[],"duplicate":false}`, batch, n)),
	}
	for i := range n {
		s.Events = append(s.Events, provision.Event{
			ID: fmt.Sprintf("%s/%d", batch, i), Type: "task", Time: now.Add(-time.Duration(i) * time.Second),
			Fields: map[string]any{
				"task.type": "install", "task.status": "success", "task.duration": json.Number(strconv.Itoa(1000 + i)),
				"os.version": "11 23H2", "software.version": "5.14.0.1234",
				"location.country": "DE", "location.subdivision": "BY",
			},
		})
	}
	return s
}

func runWorker(ctx context.Context, o options) error {
	l, err := natslog.Open(ctx, logConfig(o))
	if err != nil {
		return err
	}
	defer l.Close()
	store, err := postgres.Open(ctx, storeConfig(o))
	if err != nil {
		return err
	}
	defer store.Close()
	cons, err := l.Consumer(ctx, natslog.DefaultConsumerConfig("store"))
	if err != nil {
		return err
	}
	cfg := worker.DefaultConfig()
	cfg.Batch = o.batch
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	// As `provision worker` runs its loops: one consumer, one store.
	workers := make([]*worker.Worker, max(o.loops, 1))
	var wg sync.WaitGroup
	for i := range workers {
		if workers[i], err = worker.New(cons, store, cfg); err != nil {
			return err
		}
		wg.Go(func() { _ = workers[i].Run(ctx) })
	}
	wg.Wait()
	var r result
	for _, w := range workers {
		st := w.Stats()
		r.Events += st.Events
		r.Submissions += st.Messages
	}
	r.Role = "worker"
	return report(r)
}

func report(r result) error {
	cpu, _ := cputime.Self() // 0 where it cannot be read
	r.CPUSeconds = cpu.Seconds()
	return json.NewEncoder(os.Stdout).Encode(r)
}

// child is a started ingest or worker process.
type child struct {
	cmd *exec.Cmd
	out chan result
}

func start(o options, role string, id int) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-role", role, "-nats", o.natsURL, "-postgres", o.pgURL, "-stream", o.stream,
		"-schema", o.schema, "-duration", o.duration.String(), "-concurrency", strconv.Itoa(o.concurrency),
		"-events", strconv.Itoa(o.events), "-batch", strconv.Itoa(o.batch), "-loops", strconv.Itoa(o.loops), "-rate", strconv.Itoa(o.rate), "-id", strconv.Itoa(id))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, out: make(chan result, 1)}
	go func() {
		var r result
		_ = json.NewDecoder(bufio.NewReader(stdout)).Decode(&r)
		_, _ = io.Copy(io.Discard, stdout)
		c.out <- r
	}()
	return c, nil
}

func (c *child) wait() (result, error) {
	r := <-c.out
	err := c.cmd.Wait()
	return r, err
}

// waitAll waits for every child and adds up their results.
func waitAll(children []*child) (result, error) {
	var sum result
	for _, c := range children {
		r, err := c.wait()
		if err != nil {
			return sum, err
		}
		sum.Events += r.Events
		sum.Submissions += r.Submissions
		sum.Unavailable += r.Unavailable
		sum.CPUSeconds += r.CPUSeconds
	}
	return sum, nil
}

// figures is one run's outcome.
type figures struct {
	nodes                  int
	ingestRate, storeRate  float64
	lagP50, lagP99, lagMax time.Duration
	drain                  time.Duration
	unavailable            int64
	cpu                    map[string]float64
}

func harness(ctx context.Context, o options) error {
	var runs []int
	for _, s := range strings.Split(o.nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 8 {
			return fmt.Errorf("-nodes: %q", o.nodes)
		}
		runs = append(runs, n)
	}
	if o.http {
		return httpHarness(ctx, o, runs)
	}
	pace := "as fast as acknowledged"
	if o.rate > 0 {
		pace = fmt.Sprintf("paced at %d events/s per ingest process", o.rate)
	}
	fmt.Printf("scale-out bench: %d events per submission, %d uploads in flight per ingest process, %s, %v per run, %d CPUs\n",
		o.events, o.concurrency, pace, o.duration, numCPU())
	var all []figures
	for _, n := range runs {
		f, err := runOnce(ctx, o, n)
		if err != nil {
			return err
		}
		all = append(all, f)
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tingest×workers\tingest ev/s\tstored ev/s\tlag p50\tlag p99\tlag max\tdrain after stop\t503s\tCPU s: nats / postgres / ingest / workers")
	for _, f := range all {
		fmt.Fprintf(tw, "scale-out\t%d×%d\t%.0f\t%.0f\t%v\t%v\t%v\t%v\t%d\t%.1f / %.1f / %.1f / %.1f\n", f.nodes, f.nodes,
			f.ingestRate, f.storeRate, f.lagP50.Round(time.Millisecond), f.lagP99.Round(time.Millisecond),
			f.lagMax.Round(time.Millisecond), f.drain.Round(time.Millisecond), f.unavailable,
			f.cpu["nats-server"], f.cpu["postgres"], f.cpu["ingest"], f.cpu["worker"])
	}
	fmt.Fprintln(tw, "embedded\t-\tnot measured here: run the embedded bench harness (bench/ingest) in the same session for its figure")
	return tw.Flush()
}

func runOnce(ctx context.Context, o options, n int) (figures, error) {
	f := figures{nodes: n, cpu: map[string]float64{}}
	id := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	o.stream = "BENCH_" + strings.ToUpper(id)
	o.schema = "bench_" + id
	defer dropRun(o)

	// Create the stream, consumer and schema before the clock starts.
	cons, conn, closeObs, err := observe(ctx, logConfig(o), o.pgURL)
	if err != nil {
		return f, err
	}
	defer closeObs()
	store, err := postgres.Open(ctx, storeConfig(o))
	if err != nil {
		return f, err
	}
	defer store.Close()

	engines0 := engineCPU()
	var workers, ingests []*child
	for i := range n {
		w, err := start(o, "worker", i)
		if err != nil {
			return f, err
		}
		workers = append(workers, w)
	}
	begin := time.Now()
	for i := range n {
		c, err := start(o, "ingest", i)
		if err != nil {
			return f, err
		}
		ingests = append(ingests, c)
	}

	// Sample the lag of the newest stored event while the upload runs.
	sampler := sampleLag(ctx, conn, o.schema)

	ingest, err := waitAll(ingests)
	if err != nil {
		return f, fmt.Errorf("ingest process: %w", err)
	}
	ingested := ingest.Events
	f.unavailable, f.cpu["ingest"] = ingest.Unavailable, ingest.CPUSeconds
	uploadTime := time.Since(begin)
	// Drain: wait until every message is stored and acknowledged.
	if f.drain, err = drain(ctx, cons); err != nil {
		return f, err
	}
	storeTime := time.Since(begin)
	lags := sampler.Stop()
	for _, w := range workers {
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
	}
	work, err := waitAll(workers)
	if err != nil {
		return f, fmt.Errorf("worker process: %w", err)
	}
	stored := work.Events
	f.cpu["worker"] = work.CPUSeconds
	for k, v := range engineCPU() {
		f.cpu[k] = v - engines0[k]
	}
	head, err := store.Head(ctx)
	if err != nil {
		return f, err
	}
	// Uploads cut off by the end of the run may be stored without their
	// answer arriving: stored can exceed what ingest counted, never fall
	// short of it.
	if head != stored || stored < ingested {
		return f, fmt.Errorf("%d events acknowledged to ingest, %d reported by workers, %d in the table", ingested, stored, head)
	}
	f.ingestRate = float64(ingested) / uploadTime.Seconds()
	f.storeRate = float64(stored) / storeTime.Seconds()
	f.lagP50, f.lagP99, f.lagMax = percentiles(lags)
	fmt.Printf("  %d×%d: %d events acknowledged, %d stored, each once\n", n, n, ingested, stored)
	return f, nil
}

// engineCPU sums the CPU seconds used so far by the NATS and PostgreSQL
// server processes on this machine, from /proc.
func engineCPU() map[string]float64 {
	out := map[string]float64{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		switch {
		case name == "nats-server":
		case name == "postgres" || strings.HasPrefix(name, "postgres:"):
			name = "postgres"
		default:
			continue
		}
		stat, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		// Fields after the ")" that ends the command name; utime and
		// stime are the 14th and 15th fields of the line.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(fields[11], 64)
		st, _ := strconv.ParseFloat(fields[12], 64)
		out[name] += (ut + st) / 100 // USER_HZ
	}
	return out
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}

// dropRun removes a run's streams and schema.
func dropRun(o options) {
	lc := logConfig(o)
	if nc, err := nats.Connect(o.natsURL); err == nil {
		if js, err := nc.JetStream(); err == nil {
			_ = js.DeleteStream(lc.Stream)
			_ = js.DeleteStream(lc.DeadStream)
		}
		nc.Close()
	}
	if c, err := pgx.Connect(context.Background(), o.pgURL); err == nil {
		_, _ = c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+o.schema+" CASCADE")
		c.Close(context.Background())
	}
}
