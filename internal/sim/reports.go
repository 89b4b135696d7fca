package sim

import (
	"context"
	"crypto/x509"
	"fmt"
	"math"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/report"
	"github.com/provisionhq/provision/internal/rollup"
)

// PublicRoots is the pool of the simulated internet's public roots: the
// reports need it to tell public chains from intercepting ones, since the
// simulated public CAs are not among the system's roots.
func (f *Fleet) PublicRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, r := range f.PKI.PublicRoots {
		pool.AddCert(r.Cert)
	}
	return pool
}

// ReportOptions are the report options for the fleet's whole period.
func (f *Fleet) ReportOptions() report.Options {
	end := f.Start.Add(time.Duration(f.Days) * day)
	return report.Options{
		From:        f.Start.Format(time.DateOnly),
		To:          end.Add(-day).Format(time.DateOnly),
		PublicRoots: f.PublicRoots(),
		Now:         func() time.Time { return end },
	}
}

// BuildReports folds the log into rollups in memory and builds the quality
// and threat reports for the fleet's period, the way the server's report
// jobs do.
func BuildReports(ctx context.Context, log provision.Log, f *Fleet) (*report.Quality, *report.Threats, error) {
	store := rollup.NewMemoryStore([]byte(fmt.Sprintf("sim-%d", f.Seed)))
	u := &rollup.Updater{Log: log, Store: store}
	if _, err := u.Update(ctx); err != nil {
		return nil, nil, fmt.Errorf("rollups: %w", err)
	}
	o := f.ReportOptions()
	q, err := report.BuildQuality(ctx, store, o)
	if err != nil {
		return nil, nil, fmt.Errorf("quality report: %w", err)
	}
	th, err := report.BuildThreats(ctx, store, o)
	if err != nil {
		return nil, nil, fmt.Errorf("threat report: %w", err)
	}
	return q, th, nil
}

// CompareReports lists where the reports disagree with the ground truth:
// daily active installations must equal the truth exactly below the
// sketches' exact-count threshold and within their error bound above it
// (the reports add no noise by default), and the planted findings must be flagged — the failing
// campaign, the spreading interception root and the stolen signer — while
// no enterprise proxy is flagged as spreading.
func (t *Truth) CompareReports(q *report.Quality, th *report.Threats) []string {
	return append(t.CompareCounts(q), t.CompareFlags(q, th)...)
}

// ExactBelow is the distinct count up to which the rollups' sketches must
// count exactly: their sparse form keeps a 25-bit index per installation,
// so two of n installations collide with probability about n²/2²⁶, under
// 0.1% up to here.
const ExactBelow = 200

// SketchTolerance is how far a distinct count of n installations may be
// from the truth: none below ExactBelow, three standard errors of a
// precision-16 HyperLogLog (1.04/√65536 ≈ 0.41% each) above.
func SketchTolerance(n int) int64 {
	if n <= ExactBelow {
		return 0
	}
	return int64(math.Ceil(3 * 0.0041 * float64(n)))
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// CompareCounts lists the days whose active installations in the report
// differ from the truth by more than SketchTolerance.
func (t *Truth) CompareCounts(q *report.Quality) []string {
	var problems []string
	byDay := map[string]*int64{}
	for _, p := range q.Active.Daily {
		byDay[p.Period] = p.Installs
	}
	for _, d := range t.Days {
		got, ok := byDay[d.Date]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: no daily active figure", d.Date))
		case got == nil && d.Active >= q.Privacy.K:
			problems = append(problems, fmt.Sprintf("%s: %d active installations suppressed", d.Date, d.Active))
		case got != nil && abs(*got-int64(d.Active)) > SketchTolerance(d.Active):
			problems = append(problems, fmt.Sprintf("%s: report counts %d active installations, truth %d", d.Date, *got, d.Active))
		}
	}
	return problems
}

// CompareFlags lists the planted findings the reports do not flag, and the
// healthy campaigns and enterprise proxies they flag wrongly. A small or
// short fleet may stay below the reports' thresholds and windows.
func (t *Truth) CompareFlags(q *report.Quality, th *report.Threats) []string {
	var problems []string
	flagged := func(flags []report.Flag, kind, subject string) bool {
		for _, f := range flags {
			if f.Kind == kind && f.Subject == subject {
				return true
			}
		}
		return false
	}
	if !flagged(q.Flags, "failing_campaign", t.FailingCampaign) {
		problems = append(problems, "failing campaign "+t.FailingCampaign+" not flagged")
	}
	for _, f := range q.Flags {
		if f.Kind == "failing_campaign" && f.Subject != t.FailingCampaign {
			problems = append(problems, "healthy campaign "+f.Subject+" flagged as failing")
		}
	}
	// Issuers are known by name: only the certificate that established
	// the connection is sent, not its chain.
	if !flagged(th.Flags, "interception_spreading", rollup.IssuerNameID(t.InterceptionRoot.Cert.RawSubject)) {
		problems = append(problems, fmt.Sprintf("interception root %q not flagged as spreading", t.InterceptionRoot.Name))
	}
	for _, r := range t.EnterpriseRoots {
		if flagged(th.Flags, "interception_spreading", rollup.IssuerNameID(r.Cert.RawSubject)) {
			problems = append(problems, fmt.Sprintf("enterprise proxy %q flagged as spreading", r.Name))
		}
	}
	if !flagged(th.Flags, "signer_sudden", t.StolenSigner.SHA1) {
		problems = append(problems, fmt.Sprintf("stolen signer %q not flagged as sudden", t.StolenSigner.Name))
	}
	return problems
}
