package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/report"
	"github.com/provisionhq/provision/internal/sim"
)

// demoOptions are the demo's own flags.
type demoOptions struct {
	dataDir string
	exit    bool
	keep    bool
}

func newDemoCmd(e *env) *cobra.Command {
	o := simulateOptions{addressHeader: "X-Forwarded-For"}
	var d demoOptions
	var listen string
	var serverOnly bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole system on this machine: a server, a simulated fleet, reports and the dashboard",
		Long: `demo starts the embedded server on a free 127.0.0.1 port with a
self-signed certificate and a fresh data directory, drives a simulated
fleet through the real agent library against it, prints what the server
counted and flagged next to the fleet's ground truth, writes the HTML
reports, and keeps the dashboard up until Ctrl-C (or exits with --exit).
The data directory is removed at the end unless --keep or --data is given.
It needs no set-up and contacts nothing but 127.0.0.1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := loadManifest(cmd)
			if err != nil {
				return err
			}
			if serverOnly {
				return runDemoServer(cmd.Context(), e, m, d.dataDir, listen)
			}
			return runDemo(cmd.Context(), e, o, m, d)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.installs, "installs", demoInstalls, "number of installations")
	f.IntVar(&o.days, "days", demoDays, "number of simulated days")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the fleet")
	f.IntVar(&o.workers, "workers", 32, "installations uploading at once")
	f.StringVar(&o.via, "via", "agent", "how installations upload: agent or wire (see simulate --help)")
	f.StringVar(&d.dataDir, "data", "", "`DIR` for the server's data and the reports, new or empty, kept afterwards (default: a new temporary directory, removed afterwards unless --keep)")
	f.BoolVar(&d.keep, "keep", false, "keep the temporary data directory and the reports after the demo ends")
	f.BoolVar(&d.exit, "exit", false, "exit after the summary instead of keeping the dashboard up")
	// Only the demo's embedded server, with the fleet's GeoIP database,
	// for the chaos test to kill and restart as a child process.
	f.BoolVar(&serverOnly, "server-only", false, "run only the demo's server on --listen until interrupted")
	f.StringVar(&listen, "listen", "127.0.0.1:0", "`ADDR` the server-only mode listens on")
	_ = f.MarkHidden("server-only")
	_ = f.MarkHidden("listen")
	return cmd
}

// The default fleet: large enough to flag every planted finding the demo
// checks (the interception root needs enough installations in its first
// days to pass the publication threshold; 150 × 10 is not), small enough
// to run in under a minute on two cores shared with other work
// (docs/demo.md).
const (
	demoInstalls = 300
	demoDays     = 14
)

// prepareDemoDir returns the data directory and whether to keep it: a
// new temporary one, removed at the end unless keep, or dir, which must
// be new or empty (old data would mix into the check) and is kept.
func prepareDemoDir(dir string, keep bool) (string, bool, error) {
	if dir == "" {
		dir, err := os.MkdirTemp("", "provision-demo-")
		return dir, keep, err
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return dir, true, os.MkdirAll(dir, 0o700)
	case err != nil:
		return "", false, fmt.Errorf("--data: %w", err)
	case len(entries) > 0:
		return "", false, fmt.Errorf("--data %s already holds data (%s and %d more): the demo's check compares the server with this run's fleet only; name a new or empty directory, or leave --data out for a temporary one", dir, entries[0].Name(), len(entries)-1)
	}
	return dir, true, nil
}

// demoGCPercent is the garbage collector's target while the demo runs,
// unless GOGC is set: the process holds a whole fleet's agents and the
// gateway besides the server, and at 200 the collector takes about an
// eighth less CPU for about a third more memory (docs/demo.md).
const demoGCPercent = 200

func runDemo(ctx context.Context, e *env, o simulateOptions, m *manifest.Manifest, d demoOptions) (err error) {
	dataDir, keep, err := prepareDemoDir(d.dataDir, d.keep)
	if err != nil {
		return err
	}
	if e.getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(demoGCPercent))
	}
	w := e.stdout
	// The server is closed before this runs: the last lines say what is
	// left, true when they are printed, on success, error or Ctrl-C.
	var next []string
	defer func() {
		if !keep {
			if rmErr := os.RemoveAll(dataDir); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("removing %s: %w", dataDir, rmErr))
				return
			}
			if d.exit {
				fmt.Fprintf(w, "\nRemoved %s; nothing is left to open. `provision demo --exit --keep` keeps the data and the reports, `provision demo` keeps the dashboard up.\n", dataDir)
			} else {
				fmt.Fprintf(w, "\nRemoved %s; nothing is left to open. `provision demo --keep` keeps the data and the reports.\n", dataDir)
			}
			return
		}
		if len(next) == 0 {
			fmt.Fprintf(w, "\nKept %s (remove it when done).\n", dataDir)
			return
		}
		fmt.Fprintf(w, "\nKept %s (remove it when done). Next:\n", dataDir)
		for _, l := range next {
			fmt.Fprintln(w, "  "+l)
		}
	}()
	srv, fleet, problems, err := runDemoFleet(ctx, e, o, m, dataDir)
	if srv == nil {
		return err
	}
	if err == nil {
		from, to := fleet.ReportOptions().From, fleet.ReportOptions().To
		next = []string{
			"open " + filepath.Join(dataDir, "quality.html") + " and " + filepath.Join(dataDir, "threats.html"),
			fmt.Sprintf("provision report threats --data %s --roots %s --from %s --to %s --format md",
				dataDir, filepath.Join(dataDir, demoRootsFile), from, to),
		}
	}
	if err == nil && len(problems) > 0 {
		err = &findingError{msg: fmt.Sprintf("the server's daily active installations differ from the fleet's ground truth on %d days", len(problems))}
	}
	if err == nil && !d.exit {
		fmt.Fprintf(w, "\nReports: %s, %s\n", filepath.Join(dataDir, "quality.html"), filepath.Join(dataDir, "threats.html"))
		fmt.Fprintf(w, "Dashboard: %s/dashboard (operator token %s; the certificate is %s)\n", srv.URL, srv.Token, filepath.Join(dataDir, "server.crt"))
		fmt.Fprintln(w, "Press Ctrl-C to stop.")
		<-ctx.Done()
	}
	return errors.Join(err, srv.Close())
}

// demoRootsFile, in the data directory, holds the simulated internet's
// public roots, which the threat report needs to tell them from
// interception.
const demoRootsFile = "public-roots.pem"

// runDemoFleet starts the server in dataDir, drives the fleet against it
// and prints the summary; it returns the running server (nil when it did
// not start), the fleet and the days whose counts differ from the truth.
func runDemoFleet(ctx context.Context, e *env, o simulateOptions, m *manifest.Manifest, dataDir string) (*demoServer, *sim.Fleet, []string, error) {
	began := time.Now()
	geoPath := filepath.Join(dataDir, "fleet.mmdb")
	if err := writeGeoIP(geoPath); err != nil {
		return nil, nil, nil, err
	}
	// The fleet's public CAs are the simulated internet's; the server's
	// reports must know them to tell them from interception.
	o.start = sim.DefaultStart(time.Now(), o.days).Format(time.DateOnly)
	fleet, err := sim.New(sim.Config{Installs: o.installs, Days: o.days, Seed: o.seed, Start: sim.DefaultStart(time.Now(), o.days)})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := writeRoots(filepath.Join(dataDir, demoRootsFile), fleet); err != nil {
		return nil, nil, nil, err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := startDemoServer(ctx, demoServerConfig{
		DataDir: dataDir, GeoIP: geoPath, AddressHeader: o.addressHeader,
		PublicRoots: fleet.PublicRoots(), Manifest: m, Logger: logger,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	fail := func(err error) (*demoServer, *sim.Fleet, []string, error) { return srv, fleet, nil, err }
	caFile := filepath.Join(dataDir, "server.crt")
	w := e.stdout
	fmt.Fprintf(w, "Provision demo: server %s, data in %s\n", srv.URL, dataDir)
	fmt.Fprintf(w, "Simulating %d installations over %d days through the %s...\n", o.installs, o.days, map[string]string{"agent": "agent library", "wire": "wire protocol"}[o.via])
	o.server, o.caFile = srv.URL, caFile
	// No more uploads at once than the server admits: the rest would be
	// answered 429 and wait a second each, which is not the product's
	// cost but the fleet's crowding on one machine.
	o.uploads = ingest.DefaultLimits().MaxInFlight
	fleet, truth, err := simulate(ctx, o, m, e.stderr)
	if err != nil {
		return fail(err)
	}
	simulated := time.Since(began)
	if err := srv.UpdateRollups(ctx); err != nil {
		return fail(err)
	}
	q, err := report.BuildQuality(ctx, srv.Backend.Rollups, fleet.ReportOptions())
	if err != nil {
		return fail(err)
	}
	th, err := report.BuildThreats(ctx, srv.Backend.Rollups, fleet.ReportOptions())
	if err != nil {
		return fail(err)
	}
	head, err := srv.Backend.Stored.Head(ctx)
	if err != nil {
		return fail(err)
	}
	problems := truth.CompareCounts(q)
	printDemoSummary(w, simulated, truth, head, q, th, problems, truth.CompareFlags(q, th))
	for name, doc := range map[string]report.Document{"quality.html": q, "threats.html": th} {
		if err := writeReport(filepath.Join(dataDir, name), doc); err != nil {
			return fail(err)
		}
	}
	return srv, fleet, problems, nil
}

// writeRoots writes the fleet's public roots as PEM.
func writeRoots(path string, f *sim.Fleet) error {
	var buf bytes.Buffer
	for _, r := range f.PKI.PublicRoots {
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Cert.Raw}); err != nil {
			return err
		}
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func runDemoServer(ctx context.Context, e *env, m *manifest.Manifest, dataDir, listen string) error {
	if dataDir == "" {
		return fmt.Errorf("--data: required with --server-only")
	}
	geoPath := filepath.Join(dataDir, "fleet.mmdb")
	if _, err := os.Stat(geoPath); err != nil {
		if err := writeGeoIP(geoPath); err != nil {
			return err
		}
	}
	srv, err := startDemoServer(ctx, demoServerConfig{
		DataDir: dataDir, Listen: listen, GeoIP: geoPath, AddressHeader: "X-Forwarded-For",
		Manifest: m, Logger: slog.New(slog.NewTextHandler(e.stderr, nil)),
	})
	if err != nil {
		return err
	}
	// The same announcement as serve's: the chaos runs wait for it.
	fmt.Fprintf(e.stdout, "listening on %s\n", srv.URL)
	select {
	case <-ctx.Done():
	case <-srv.Done():
	}
	return srv.Close()
}

func writeReport(path string, d report.Document) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := report.WriteHTML(f, d); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

func printDemoSummary(w io.Writer, took time.Duration, truth *sim.Truth, stored int64, q *report.Quality, th *report.Threats, problems, flagProblems []string) {
	s := truth.Summary()
	fmt.Fprintf(w, "\nSimulated %d days in %s.\n", s.Days, took.Round(time.Second))
	counted := "suppressed"
	if p := q.Active.Period.Installs; p != nil {
		counted = fmt.Sprint(*p)
	}
	note := ""
	if s.Installations > sim.ExactBelow {
		note = "; above a few hundred the rollups count with HyperLogLog, ±0.4% standard error"
	}
	fmt.Fprintf(w, "Installations counted: %s over the period (ground truth %d%s)\n", counted, s.Installations, note)
	fmt.Fprintf(w, "Events stored: %d; rejected: %d; batches refused: %d; retries: %d\n", stored, s.Sent.Rejected, s.Sent.DroppedBatches, s.Sent.Retries)
	if len(problems) == 0 {
		fmt.Fprintf(w, "Ground truth: daily active installations match on all %d days.\n", s.Days)
	} else {
		fmt.Fprintf(w, "Ground truth: the daily active installations differ:\n")
		for _, p := range problems {
			fmt.Fprintln(w, "  "+p)
		}
	}
	if len(flagProblems) == 0 {
		fmt.Fprintln(w, "Every planted finding the reports can see is flagged: the failing campaign, the spreading interception root, the stolen signer.")
	} else {
		fmt.Fprintln(w, "Planted findings the reports do not show (a small or short fleet can stay below their thresholds):")
		for _, p := range flagProblems {
			fmt.Fprintln(w, "  "+p)
		}
	}
	fmt.Fprintln(w, "\nTop quality findings:")
	for _, f := range q.Flags {
		fmt.Fprintf(w, "  %s %s: %s\n", f.Kind, f.Subject, f.Reason)
	}
	var errs []report.ErrorRow
	for _, r := range q.Errors {
		if r.Installs != nil {
			errs = append(errs, r)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool { return *errs[i].Installs > *errs[j].Installs })
	for _, r := range errs[:min(3, len(errs))] {
		fmt.Fprintf(w, "  error %s %s at %s on %d installations\n", r.Type, r.Code, r.Control, *r.Installs)
	}
	fmt.Fprintln(w, "\nFlagged threats:")
	if len(th.Flags) == 0 {
		fmt.Fprintln(w, "  none (a fleet this small may stay below the publication threshold)")
	}
	for _, f := range th.Flags {
		name := f.Name
		if name == "" {
			name = f.Subject
		}
		fmt.Fprintf(w, "  %s %s: %s\n", f.Kind, name, f.Reason)
	}
}
