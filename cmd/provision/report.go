package main

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/atomicfile"
	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/report"
)

func newReportCmd(e *env) *cobra.Command {
	var (
		from, to, format, out, version, roots string
		k                                     int
		epsilon                               float64
		noUpdate                              bool
		so                                    storeFlags
	)
	cmd := &cobra.Command{
		Use:   "report quality|threats",
		Short: "Write the quality or the threat-trend report",
		Long: `report writes a report built from the rollups: quality (active installations,
update coverage, errors, tasks, licence providers) or threats (TLS issuers
and file signers, with flags). Every figure passes the k-threshold; --epsilon
adds Laplace noise. The rollups are brought up to date first unless
--no-update is given. Exit code 1 means the report raised a flag.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"quality", "threats"},
		PreRunE: func(_ *cobra.Command, args []string) error {
			if kind := args[0]; kind != "quality" && kind != "threats" {
				return fmt.Errorf("unknown report %q: want quality or threats", kind)
			}
			if err := checkFormat(format, report.Formats); err != nil {
				return err
			}
			if to == "" {
				to = time.Now().UTC().Format(time.DateOnly)
			}
			if from == "" {
				t, err := time.Parse(time.DateOnly, to)
				if err != nil {
					return fmt.Errorf("--to: %q is not a date (YYYY-MM-DD)", to)
				}
				from = t.AddDate(0, 0, -29).Format(time.DateOnly)
			}
			return nil
		},
		RunE: withBackend(&so, e, func(cmd *cobra.Command, b *backend.Backend, args []string) error {
			kind := args[0]
			ctx := cmd.Context()
			rs := b.Rollups
			if !noUpdate {
				if _, err := b.Updater(nil).Update(ctx); err != nil {
					return err
				}
			}
			o := report.Options{From: from, To: to, K: k, Epsilon: epsilon, Version: version}
			if roots != "" {
				var err error
				if o.PublicRoots, err = loadRoots(roots); err != nil {
					return err
				}
			}
			var doc report.Document
			var flags int
			if kind == "quality" {
				q, err := report.BuildQuality(ctx, rs, o)
				if err != nil {
					return err
				}
				doc, flags = q, len(q.Flags)
			} else {
				t, err := report.BuildThreats(ctx, rs, o)
				if err != nil {
					return err
				}
				doc, flags = t, len(t.Flags)
			}
			var buf bytes.Buffer
			if err := report.Write(&buf, doc, format); err != nil {
				return err
			}
			if out == "" || out == "-" {
				if _, err := e.stdout.Write(buf.Bytes()); err != nil {
					return err
				}
			} else if err := atomicfile.Write(out, buf.Bytes(), 0o644); err != nil {
				return err
			}
			if flags > 0 {
				return &findingError{msg: fmt.Sprintf("%s report: %d flags raised", kind, flags)}
			}
			return nil
		}),
	}
	so.register(cmd, "report")
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "first `DATE` (YYYY-MM-DD, UTC) of the period; default 29 days before --to")
	f.StringVar(&to, "to", "", "last `DATE` of the period; default today")
	f.StringVar(&format, "format", "json", "output format: json, csv, md or html")
	f.StringVar(&out, "out", "", "write to `FILE` instead of standard output")
	f.StringVar(&version, "version", "", "quality report: keep only this application `VERSION` in version rows")
	f.IntVar(&k, "k", report.DefaultK, "minimum installations behind every published figure")
	f.Float64Var(&epsilon, "epsilon", 0, "add Laplace noise with this epsilon per figure (0: none)")
	f.StringVar(&roots, "roots", "", "PEM `FILE` of the roots that count as public (default: the system's)")
	f.BoolVar(&noUpdate, "no-update", false, "read the rollups as they are, without applying new log records first")
	return cmd
}

func loadRoots(path string) (*x509.CertPool, error) {
	pool, err := certs.LoadPool(path)
	if err != nil {
		return nil, fmt.Errorf("--roots: %w", err)
	}
	return pool, nil
}
