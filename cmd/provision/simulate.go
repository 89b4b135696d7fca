package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/sim"
)

// simulateOptions are the knobs shared by simulate and demo.
type simulateOptions struct {
	server        string
	installs      int
	days          int
	seed          uint64
	start         string
	caFile        string
	workers       int
	addressHeader string
	truthFile     string
}

func newSimulateCmd(e *env) *cobra.Command {
	o := simulateOptions{}
	var geoipOut string
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Drive a simulated fleet of installations against a server",
		Long: `simulate runs a deterministic fleet of installations over days of simulated
time and uploads what each would send to the server, as fast as the server
takes it. The same seed gives the same fleet. The fleet's client addresses
are sent in a trusted proxy header and mapped to countries by the GeoIP
database that --write-geoip writes; start the server with that database
to get the countries of the ground truth.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if geoipOut != "" {
				if err := writeGeoIP(geoipOut); err != nil {
					return err
				}
				if o.server == "" {
					return nil
				}
			}
			if o.server == "" {
				return fmt.Errorf("--server: missing")
			}
			m, err := loadManifest(cmd)
			if err != nil {
				return err
			}
			truth, err := simulate(cmd.Context(), o, m, e.stderr)
			if truth != nil {
				truth.Summary().Print(e.stdout)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "base `URL` of the server, such as https://127.0.0.1:8443")
	f.IntVar(&o.installs, "installs", 1000, "number of installations")
	f.IntVar(&o.days, "days", 14, "number of simulated days")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the fleet; the same seed gives the same fleet")
	f.StringVar(&o.start, "start", "", "first simulated `DATE` (YYYY-MM-DD); default: the period ends yesterday")
	f.StringVar(&o.caFile, "ca", "", "PEM `FILE` of the CA (or self-signed certificate) the server's certificate chains to")
	f.IntVar(&o.workers, "workers", 16, "concurrent uploads")
	f.StringVar(&o.addressHeader, "address-header", "X-Forwarded-For", "proxy `HEADER` that carries each installation's simulated address; empty sends none")
	f.StringVar(&o.truthFile, "truth", "", "write the fleet's ground truth as JSON to `FILE`")
	f.StringVar(&geoipOut, "write-geoip", "", "write the GeoIP database of the simulated addresses to `FILE`.mmdb")
	return cmd
}

func writeGeoIP(path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := sim.WriteGeoIP(out); err != nil {
		out.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return out.Close()
}

// simulate builds the fleet, drives it against o.server and returns the
// ground truth, also when the run stopped early.
func simulate(ctx context.Context, o simulateOptions, m *manifest.Manifest, stderr io.Writer) (*sim.Truth, error) {
	cfg := sim.Config{Installs: o.installs, Days: o.days, Seed: o.seed, Start: sim.DefaultStart(time.Now(), o.days)}
	if o.start != "" {
		t, err := time.Parse(time.DateOnly, o.start)
		if err != nil {
			return nil, fmt.Errorf("--start: %w", err)
		}
		cfg.Start = t
	}
	fleet, err := sim.New(cfg)
	if err != nil {
		return nil, err
	}
	var ca []byte
	if o.caFile != "" {
		if ca, err = os.ReadFile(o.caFile); err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
	}
	hc, err := sim.NewHTTPClient(ca, o.workers)
	if err != nil {
		return nil, fmt.Errorf("--ca %s: %w", o.caFile, err)
	}
	defer hc.CloseIdleConnections()
	client := &sim.Client{BaseURL: o.server, HTTP: hc, AddressHeader: o.addressHeader}
	truth := sim.NewTruth(fleet, false)
	opts := sim.RunOptions{ManifestVersion: m.Version, Send: client.Send, Workers: o.workers}
	if bar := newProgress(stderr, o.days); bar != nil {
		opts.Progress = func(d, _ int) { _ = bar.Set(d) }
		defer func() { _ = bar.Finish() }()
	}
	runErr := sim.Run(ctx, fleet, truth, opts)
	if o.truthFile != "" {
		data, err := json.MarshalIndent(truth.Summary(), "", "  ")
		if err == nil {
			err = os.WriteFile(o.truthFile, append(data, '\n'), 0o644)
		}
		if err != nil && runErr == nil {
			runErr = fmt.Errorf("--truth: %w", err)
		}
	}
	return truth, runErr
}

// newProgress returns a progress bar over the simulated days when w is a
// terminal, nil otherwise: logs and pipes stay quiet.
func newProgress(w io.Writer, days int) *progressbar.ProgressBar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions(days,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("simulated days"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
	)
}
