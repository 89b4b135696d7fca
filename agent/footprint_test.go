//go:build linux

package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/cputime"
	"github.com/provisionhq/provision/internal/wire/wiretest"
)

// These benchmarks measure the agent's footprint; docs/agent.md records
// their figures. Run them with
//
//	go test -run '^$' -bench Footprint -benchtime 20x ./agent/

// dayClock is a clock that a benchmark moves on by a day per iteration, so
// every collection is the day's first and queues everything.
type dayClock struct{ t atomic.Int64 }

func (c *dayClock) now() time.Time               { return time.Unix(0, c.t.Load()) }
func (c *dayClock) nextDay()                     { c.t.Add(int64(24 * time.Hour)) }
func newDayClock() *dayClock                     { c := &dayClock{}; c.t.Store(time.Now().UnixNano()); return c }
func realOS(ctx context.Context) (OSInfo, error) { return readSystem(ctx) }

// BenchmarkFootprintDailyCollection is the CPU time of one daily
// collection on this machine: reading os-release, uname and the dpkg
// database, building and validating the four daily events, and making
// them durable.
func BenchmarkFootprintDailyCollection(b *testing.B) {
	clock := newDayClock()
	a := openAgent(b, b.TempDir(), func(c *Config) { c.Now = clock.now; c.ReadOS = realOS })
	if _, err := a.Accept("eu"); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	start, _ := cputime.Self()
	n := 0
	for b.Loop() {
		clock.nextDay()
		rep, err := a.Collect(ctx)
		if err != nil || len(rep.Queued) != 4 {
			b.Fatalf("collect: %+v, %v", rep, err)
		}
		n++
	}
	end, _ := cputime.Self()
	b.ReportMetric(float64((end-start).Microseconds())/1000/float64(n), "cpu-ms/op")
}

// typicalDay records what a typical installation sees in a day: the daily
// events, a few distinct errors repeated many times, one upgrade task, and
// (with scans) the chains of the sites it connected to and the signers of
// the files it scanned.
func typicalDay(b *testing.B, a *Agent, srv *wiretest.Server, scans bool) {
	ctx := context.Background()
	if _, err := a.Collect(ctx); err != nil {
		b.Fatal(err)
	}
	for i := range 120 {
		if err := a.RecordError(ctx, UIError{Type: "connection_failed", Code: fmt.Sprintf("E%d", 40+i%3), ControlID: "connect_button"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := a.RecordTask(ctx, Task{Type: TaskUpdate, Status: TaskSuccess, Duration: 41 * time.Second}); err != nil {
		b.Fatal(err)
	}
	if scans {
		for range 500 {
			if _, err := a.RecordTLSChain(ctx, [][]byte{srv.Certificate().Raw}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFootprintWireBytesPerDay is the compressed bytes one
// installation sends in a day, measured at the server.
func BenchmarkFootprintWireBytesPerDay(b *testing.B) {
	for _, profile := range []struct {
		name     string
		encoding string
		scans    bool
	}{{"typical/gzip", "gzip", false}, {"typical/zstd", "zstd", false}, {"with-tls-scans/gzip", "gzip", true}} {
		b.Run(profile.name, func(b *testing.B) {
			srv := newServer(b)
			defer srv.Close()
			clock := newDayClock()
			a := openAgent(b, b.TempDir(), func(c *Config) { c.Now = clock.now; c.ReadOS = realOS })
			if _, err := a.Accept("eu"); err != nil {
				b.Fatal(err)
			}
			up := Upload{Server: srv.URL, CAFile: serverCA(b, srv), Encoding: profile.encoding}
			total, days := 0, 0
			for b.Loop() {
				clock.nextDay()
				typicalDay(b, a, srv, profile.scans)
				rep, err := a.Flush(context.Background(), up)
				if err != nil {
					b.Fatal(err)
				}
				total += rep.WireBytes
				days++
			}
			b.ReportMetric(float64(total)/float64(days), "wire-bytes/day")
		})
	}
}

// BenchmarkFootprintCollectFlushPeakRSS runs the real binary's collect and
// flush in child processes and reports the larger peak resident set size.
func BenchmarkFootprintCollectFlushPeakRSS(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "provision")
	build := exec.Command("go", "build", "-o", bin, "../cmd/provision")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	srv := newServer(b)
	defer srv.Close()
	ca := serverCA(b, srv)
	state := b.TempDir()
	config := "software: {type: vpn, name: Secure Connection, version: 5.14.0.1234}\nlicense_provider_site: https://shop.example.com\n"
	if err := os.WriteFile(filepath.Join(state, "agent.yaml"), []byte(config), 0o600); err != nil {
		b.Fatal(err)
	}
	child := func(args ...string) int64 {
		cmd := exec.Command(bin, append([]string{"agent", "--state", state}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %v\n%s", args, err, out)
		}
		return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	}
	child("consent", "accept", "--region", "eu")
	var peak int64
	for b.Loop() {
		child("record", "error", "--type", "crash", "--code", "E1")
		// The first round queues and sends the full daily set; later rounds
		// of the same day send only the error.
		peak = max(peak, child("collect"), child("flush", "--server", srv.URL, "--ca", ca))
	}
	b.ReportMetric(float64(peak)/1024, "peak-rss-MB")
}
