package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	uploads       int // at most this many uploads to the server at once; 0: workers
	addressHeader string
	truthFile     string
	via           string // agent or wire
	stateDir      string // agents' state directories; empty: a temporary one
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
			_, truth, err := simulate(cmd.Context(), o, m, e.stderr)
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
	f.StringVar(&o.via, "via", "agent", "how installations upload: agent (the real agent library, one state directory each, behind a TLS gateway that adds the address header) or wire (batches posted directly, for large fleets)")
	f.StringVar(&o.stateDir, "state", "", "`DIR` for the agents' state directories (default: a temporary directory, removed afterwards)")
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
// fleet and its ground truth, also when the run stopped early.
func simulate(ctx context.Context, o simulateOptions, m *manifest.Manifest, stderr io.Writer) (*sim.Fleet, *sim.Truth, error) {
	cfg := sim.Config{Installs: o.installs, Days: o.days, Seed: o.seed, Start: sim.DefaultStart(time.Now(), o.days)}
	if o.start != "" {
		t, err := time.Parse(time.DateOnly, o.start)
		if err != nil {
			return nil, nil, fmt.Errorf("--start: %w", err)
		}
		cfg.Start = t
	}
	if o.via != "agent" && o.via != "wire" {
		return nil, nil, fmt.Errorf("--via %q: use agent or wire", o.via)
	}
	fleet, err := sim.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	var ca []byte
	if o.caFile != "" {
		if ca, err = os.ReadFile(o.caFile); err != nil {
			return nil, nil, fmt.Errorf("--ca: %w", err)
		}
	}
	hc, err := sim.NewHTTPClient(ca, o.workers)
	if err != nil {
		return nil, nil, fmt.Errorf("--ca %s: %w", o.caFile, err)
	}
	defer hc.CloseIdleConnections()
	if err := sim.Reachable(ctx, hc, o.server); err != nil {
		return nil, nil, err
	}
	client := &sim.Client{BaseURL: o.server, HTTP: hc, AddressHeader: o.addressHeader}
	send := client.Send
	if o.via == "agent" {
		root := o.stateDir
		if root == "" {
			// tmpfs where there is one: thousands of agents each fsync
			// their outbox, which a disk would turn into minutes.
			base := ""
			if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
				base = "/dev/shm"
			}
			if root, err = os.MkdirTemp(base, "provision-agents-"); err != nil {
				return nil, nil, err
			}
			defer os.RemoveAll(root)
		}
		gw, err := sim.StartGateway(o.server, ca, o.addressHeader, nil)
		if err != nil {
			return nil, nil, err
		}
		defer gw.Close()
		caFile := filepath.Join(root, "gateway.pem")
		if err := os.WriteFile(caFile, gw.CAPEM, 0o600); err != nil {
			return nil, nil, err
		}
		af := &sim.AgentFleet{Root: filepath.Join(root, "agents"), Server: gw.URL, CAFile: caFile, Wire: client,
			SkipDelivered: true, // the truth below does not record ids
			MaxUploads:    o.uploads}
		defer af.Close()
		send = af.Send
	}
	workers := o.workers
	if o.via == "wire" && o.uploads > 0 {
		workers = min(workers, o.uploads) // each worker only uploads
	}
	truth := sim.NewTruth(fleet, false)
	opts := sim.RunOptions{ManifestVersion: m.Version, Send: send, Workers: workers}
	if bar := newProgress(stderr, o.days); bar != nil {
		opts.Progress = func(d, _ int) { _ = bar.Set(d) }
		defer func() { _ = bar.Finish() }()
	} else {
		began := time.Now()
		opts.Progress = func(d, days int) {
			fmt.Fprintf(stderr, "day %d/%d: %d events accepted so far, %s\n", d, days, truth.Counters().Accepted, time.Since(began).Round(100*time.Millisecond))
		}
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
	return fleet, truth, runErr
}

// newProgress returns a progress bar over the simulated days when w is a
// terminal, nil otherwise: logs and files get a line per simulated day.
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
