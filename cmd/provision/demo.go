package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/report"
	"github.com/provisionhq/provision/internal/sim"
)

func newDemoCmd(e *env) *cobra.Command {
	o := simulateOptions{addressHeader: "X-Forwarded-For"}
	var dataDir, listen string
	var exit, serverOnly bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole system on this machine: a server, a simulated fleet, reports and the dashboard",
		Long: `demo starts the embedded server on a free 127.0.0.1 port with a
self-signed certificate and a fresh data directory, drives a simulated
fleet through the real agent library against it, prints what the server
counted and flagged next to the fleet's ground truth, writes the HTML
reports, and keeps the dashboard up until Ctrl-C (or exits with --exit).
It needs no set-up and contacts nothing but 127.0.0.1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := loadManifest(cmd)
			if err != nil {
				return err
			}
			if serverOnly {
				return runDemoServer(cmd.Context(), e, m, dataDir, listen)
			}
			return runDemo(cmd.Context(), e, o, m, dataDir, exit)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.installs, "installs", 2000, "number of installations")
	f.IntVar(&o.days, "days", 21, "number of simulated days")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the fleet")
	f.IntVar(&o.workers, "workers", 32, "installations uploading at once")
	f.StringVar(&o.via, "via", "agent", "how installations upload: agent or wire (see simulate --help)")
	f.StringVar(&dataDir, "data", "", "`DIR` for the server's data and the reports (default: a new temporary directory, kept)")
	f.BoolVar(&exit, "exit", false, "exit after the summary instead of keeping the dashboard up")
	// Only the demo's embedded server, with the fleet's GeoIP database,
	// for the chaos test to kill and restart as a child process.
	f.BoolVar(&serverOnly, "server-only", false, "run only the demo's server on --listen until interrupted")
	f.StringVar(&listen, "listen", "127.0.0.1:0", "`ADDR` the server-only mode listens on")
	_ = f.MarkHidden("server-only")
	_ = f.MarkHidden("listen")
	return cmd
}

func runDemo(ctx context.Context, e *env, o simulateOptions, m *manifest.Manifest, dataDir string, exit bool) error {
	began := time.Now()
	if dataDir == "" {
		var err error
		if dataDir, err = os.MkdirTemp("", "provision-demo-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	geoPath := filepath.Join(dataDir, "fleet.mmdb")
	if err := writeGeoIP(geoPath); err != nil {
		return err
	}
	// The fleet's public CAs are the simulated internet's; the server's
	// reports must know them to tell them from interception.
	o.start = sim.DefaultStart(time.Now(), o.days).Format(time.DateOnly)
	fleet, err := sim.New(sim.Config{Installs: o.installs, Days: o.days, Seed: o.seed, Start: sim.DefaultStart(time.Now(), o.days)})
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := startDemoServer(ctx, demoServerConfig{
		DataDir: dataDir, GeoIP: geoPath, AddressHeader: o.addressHeader,
		PublicRoots: fleet.PublicRoots(), Manifest: m, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	caFile := filepath.Join(dataDir, "server.crt")
	w := e.stdout
	fmt.Fprintf(w, "Provision demo: server %s, data in %s\n", srv.URL, dataDir)
	fmt.Fprintf(w, "Simulating %d installations over %d days through the %s...\n", o.installs, o.days, map[string]string{"agent": "agent library", "wire": "wire protocol"}[o.via])
	o.server, o.caFile = srv.URL, caFile
	fleet, truth, err := simulate(ctx, o, m, e.stderr)
	if err != nil {
		return err
	}
	simulated := time.Since(began)
	if err := srv.UpdateRollups(ctx); err != nil {
		return err
	}
	q, err := report.BuildQuality(ctx, srv.Backend.Rollups, fleet.ReportOptions())
	if err != nil {
		return err
	}
	th, err := report.BuildThreats(ctx, srv.Backend.Rollups, fleet.ReportOptions())
	if err != nil {
		return err
	}
	head, err := srv.Backend.Stored.Head(ctx)
	if err != nil {
		return err
	}
	problems := truth.CompareCounts(q)
	printDemoSummary(w, simulated, truth, head, q, th, problems, truth.CompareFlags(q, th))
	for name, doc := range map[string]report.Document{"quality.html": q, "threats.html": th} {
		path := filepath.Join(dataDir, name)
		if err := writeReport(path, doc); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nReports: %s, %s\n", filepath.Join(dataDir, "quality.html"), filepath.Join(dataDir, "threats.html"))
	fmt.Fprintf(w, "Dashboard: %s/dashboard (operator token %s; the certificate is %s)\n", srv.URL, srv.Token, caFile)
	if len(problems) > 0 {
		return &findingError{msg: fmt.Sprintf("the server's daily active installations differ from the fleet's ground truth on %d days", len(problems))}
	}
	if exit {
		return nil
	}
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
	<-ctx.Done()
	return nil
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
	fmt.Fprintf(e.stdout, "serving on %s\n", srv.URL)
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
		fmt.Fprintln(w, "Every planted finding is flagged: the failing campaign, the spreading interception root, the expired issuer, the stolen signer.")
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
