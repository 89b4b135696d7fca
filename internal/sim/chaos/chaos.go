package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
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

	// ServerArgs are added to `serve --data DIR --listen ADDR`; the run
	// adds nothing else, so they must make the server trust AddressHeader
	// from 127.0.0.1 and use GeoIPFile when Countries is set.
	ServerArgs    []string
	AddressHeader string
	Countries     bool // compare stored countries with the truth

	// OpenLog opens the stopped server's log for the final check.
	OpenLog func(ctx context.Context, dataDir string) (provision.Log, io.Closer, error)

	// Every, when set, samples the server's RSS and open files that often
	// and passes them to Sampled.
	Every   time.Duration
	Sampled func(elapsed time.Duration, u Usage, confirmed int64)

	ServerOutput io.Writer            // the server's stdout and stderr, nil discards
	Logf         func(string, ...any) // progress messages, nil discards
}

// GeoIPFile is where Run writes the fleet's GeoIP database in the data
// directory before the first start.
func GeoIPFile(dataDir string) string { return filepath.Join(dataDir, "fleet.mmdb") }

// Report is the outcome of a run.
type Report struct {
	Kills, Refusals int
	Truth           *sim.Truth
	Check           *sim.Check
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
	srv := &ServerProcess{Binary: o.Binary, DataDir: o.DataDir, Addr: addr, Args: o.ServerArgs, Output: o.ServerOutput}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	defer srv.Kill()
	proxy, err := NewProxy(addr)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	ca, err := os.ReadFile(srv.CertFile())
	if err != nil {
		return nil, err
	}
	hc, err := sim.NewHTTPClient(ca, o.Workers)
	if err != nil {
		return nil, err
	}
	defer hc.CloseIdleConnections()
	client := &sim.Client{BaseURL: "https://" + proxy.Addr(), HTTP: hc, AddressHeader: o.AddressHeader, MaxBackoff: 500 * time.Millisecond}

	var confirmed atomic.Int64
	send := func(ctx context.Context, u *sim.Upload) (*sim.Result, error) {
		res, err := client.Send(ctx, u)
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
				if err := srv.Start(ctx); err != nil {
					chaosErr = fmt.Errorf("restarting after kill %d: %w", kills, err)
					return
				}
			} else {
				refusals++
				logf("refusing connections for %s after %d confirmed batches", o.RefuseFor, confirmed.Load())
				proxy.Refuse()
				rep.Refusals++
				select {
				case <-time.After(o.RefuseFor):
				case <-ctx.Done():
				}
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
					o.Sampled(time.Since(began), Sample(srv.PID()), confirmed.Load())
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
	if err := srv.Stop(30 * time.Second); err != nil {
		return rep, err
	}
	log, closer, err := o.OpenLog(ctx, o.DataDir)
	if err != nil {
		return rep, fmt.Errorf("opening the stored log: %w", err)
	}
	defer closer.Close()
	rep.Check, err = sim.Verify(ctx, log, truth, fleet, o.Countries)
	return rep, err
}
