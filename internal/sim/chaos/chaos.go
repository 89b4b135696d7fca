package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/clock"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/serverproc"
	"github.com/provisionhq/provision/internal/sim"
)

// Options describe one chaos run.
type Options struct {
	Binary  string // the provision binary to run as `serve`
	DataDir string // the server's data directory (empty: error)

	Fleet   sim.Config
	Workers int // concurrent uploads, default 8

	Kills     int           // SIGKILL-and-restart events spread over the run
	Refusals  int           // periods in which connections are refused
	RefuseFor time.Duration // how long each refusal lasts, default 1s

	// ServerCommand gives the server's arguments for a data directory and
	// a 127.0.0.1 address; nil means serve --data DIR --listen ADDR. The
	// server must print "listening on URL" once it accepts connections
	// (serverproc), keep its certificate in DIR/server.crt, trust
	// X-Forwarded-For and, with Countries, use GeoIPFile(DIR).
	ServerCommand func(dataDir, addr string) []string
	// Plain runs the server with plain HTTP behind the simulator's TLS
	// gateway, as behind a load balancer; the server then trusts
	// X-Forwarded-For (serve --insecure-http --trusted-proxy-header).
	Plain     bool
	Countries bool // compare stored countries with the truth
	// Via is how installations upload: "agent" (the real agent library
	// behind the gateway) or "wire".
	Via string

	// OpenLog opens the stopped server's log for the final check.
	OpenLog func(ctx context.Context, dataDir string) (provision.Log, io.Closer, error)
	// Reports, when set, builds the reports from the log after the run
	// and compares them with the ground truth as well.
	Reports bool

	// Every, when set, samples the server's RSS and open files that often
	// and passes them to Sampled.
	Every   time.Duration
	Sampled func(elapsed time.Duration, u serverproc.Usage, confirmed int64)

	ServerOutput io.Writer            // the server's stdout and stderr, nil discards
	Logf         func(string, ...any) // progress messages, nil discards
}

// FreeAddr returns a 127.0.0.1 address with a port nobody listens on now:
// the server keeps it across restarts, so the proxy in front of it does
// not move.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// GeoIPFile is where Run writes the fleet's GeoIP database in the data
// directory before the first start.
func GeoIPFile(dataDir string) string { return filepath.Join(dataDir, "fleet.mmdb") }

// Report is the outcome of a run.
type Report struct {
	Kills, Refusals int
	Truth           *sim.Truth
	Check           *sim.Check
	ReportProblems  []string // where the reports disagree with the truth
	Elapsed         time.Duration
}

// Run performs the chaos run and returns its report; an error means the
// run itself could not be carried out, a failed Check that it found loss
// or duplication.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.DataDir == "" || o.Binary == "" || o.OpenLog == nil {
		return nil, errors.New("chaos: Binary, DataDir and OpenLog are required")
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if o.RefuseFor <= 0 {
		o.RefuseFor = time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.ServerOutput == nil {
		o.ServerOutput = io.Discard
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, err
	}
	geo, err := os.Create(GeoIPFile(o.DataDir))
	if err != nil {
		return nil, err
	}
	if err := sim.WriteGeoIP(geo); err != nil {
		geo.Close()
		return nil, err
	}
	if err := geo.Close(); err != nil {
		return nil, err
	}
	fleet, err := sim.New(o.Fleet)
	if err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	var srv serverproc.Process
	args := []string{"serve", "--data", o.DataDir, "--listen", addr}
	if o.ServerCommand != nil {
		args = o.ServerCommand(o.DataDir, addr)
	}
	// An exec.Cmd runs once: each start, the first and those after a
	// kill, gets a new one.
	start := func() error {
		cmd := exec.Command(o.Binary, args...)
		cmd.Stdout, cmd.Stderr = o.ServerOutput, o.ServerOutput
		return srv.Start(ctx, cmd)
	}
	if err := start(); err != nil {
		return nil, err
	}
	defer srv.Kill()
	proxy, err := NewProxy(addr)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	var ca []byte
	scheme := "http://"
	if !o.Plain {
		scheme = "https://"
		if ca, err = os.ReadFile(filepath.Join(o.DataDir, "server.crt")); err != nil {
			return nil, err
		}
	}
	hc, err := sim.NewHTTPClient(ca, o.Workers)
	if err != nil {
		return nil, err
	}
	defer hc.CloseIdleConnections()
	client := &sim.Client{BaseURL: scheme + proxy.Addr(), HTTP: hc, AddressHeader: "X-Forwarded-For", MaxBackoff: 500 * time.Millisecond}
	upload := client.Send
	if o.Via == "agent" {
		gw, err := sim.StartGateway(client.BaseURL, ca, "X-Forwarded-For", nil)
		if err != nil {
			return nil, err
		}
		defer gw.Close()
		caFile := filepath.Join(o.DataDir, "gateway.pem")
		if err := os.WriteFile(caFile, gw.CAPEM, 0o600); err != nil {
			return nil, err
		}
		af := &sim.AgentFleet{Root: filepath.Join(o.DataDir, "agents"), Server: gw.URL, CAFile: caFile, Wire: client}
		defer af.Close()
		upload = af.Send
	}

	var confirmed atomic.Int64
	send := func(ctx context.Context, u *sim.Upload) (*sim.Result, error) {
		res, err := upload(ctx, u)
		if err == nil {
			confirmed.Add(1)
		}
		return res, err
	}
	truth := sim.NewTruth(fleet, true)
	rep := &Report{Truth: truth}
	began := time.Now()

	simDone := make(chan struct{})
	var wg sync.WaitGroup
	var chaosErr error
	// The chaos schedule: actions spread over the expected number of
	// batches (about half the installation-days are active ones).
	actions := o.Kills + o.Refusals
	expected := int64(float64(o.Fleet.Installs*o.Fleet.Days) * 0.5)
	wg.Go(func() {
		kills, refusals := 0, 0
		for i := range actions {
			threshold := expected * int64(i+1) / int64(actions+1)
			for confirmed.Load() < threshold {
				select {
				case <-simDone:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			// Alternate, starting with a kill, until one kind runs out.
			if kills < o.Kills && (refusals >= o.Refusals || i%2 == 0) {
				kills++
				logf("kill -9 server %d after %d confirmed batches", srv.PID(), confirmed.Load())
				srv.Kill()
				rep.Kills++
				time.Sleep(200 * time.Millisecond)
				if err := start(); err != nil {
					chaosErr = fmt.Errorf("restarting after kill %d: %w", kills, err)
					return
				}
			} else {
				refusals++
				logf("refusing connections for %s after %d confirmed batches", o.RefuseFor, confirmed.Load())
				proxy.Refuse()
				rep.Refusals++
				_ = clock.Sleep(ctx, o.RefuseFor)
				if err := proxy.Accept(); err != nil {
					chaosErr = fmt.Errorf("listening again: %w", err)
					return
				}
			}
		}
	})
	if o.Every > 0 && o.Sampled != nil {
		wg.Go(func() {
			t := time.NewTicker(o.Every)
			defer t.Stop()
			for {
				select {
				case <-simDone:
					return
				case <-t.C:
					// Skip the moments the server is down between a kill
					// and its restart.
					if u := serverproc.Sample(srv.PID()); u.RSSKiB > 0 {
						o.Sampled(time.Since(began), u, confirmed.Load())
					}
				}
			}
		})
	}
	runCtx, cancel := context.WithCancel(ctx)
	runErr := sim.Run(runCtx, fleet, truth, sim.RunOptions{ManifestVersion: manifest.Reference().Version, Send: send, Workers: o.Workers})
	cancel()
	close(simDone)
	wg.Wait()
	rep.Elapsed = time.Since(began)
	if runErr != nil {
		return rep, fmt.Errorf("simulation: %w", runErr)
	}
	if chaosErr != nil {
		return rep, chaosErr
	}
	if err := srv.Stop(); err != nil {
		return rep, err
	}
	log, closer, err := o.OpenLog(ctx, o.DataDir)
	if err != nil {
		return rep, fmt.Errorf("opening the stored log: %w", err)
	}
	defer closer.Close()
	rep.Check, err = sim.Verify(ctx, log, truth, fleet, o.Countries)
	if err != nil || !o.Reports {
		return rep, err
	}
	q, th, err := sim.BuildReports(ctx, log, fleet)
	if err != nil {
		return rep, err
	}
	rep.ReportProblems = truth.CompareReports(q, th)
	return rep, nil
}
