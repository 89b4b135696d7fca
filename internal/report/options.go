// Package report turns rollups into publishable figures: the quality report
// (active installations, update coverage, errors, tasks, licence sources)
// and the threat-trend report (TLS issuers and file signers), with flags for
// what needs a look. Every figure passes a minimum-installation threshold and
// can carry calibrated Laplace noise; the parameters used are part of every
// report.
package report

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// DefaultK is the minimum number of distinct installations behind any
// published figure.
const DefaultK = 10

// Options choose the period, the privacy parameters and the flag rules.
type Options struct {
	From, To string // days YYYY-MM-DD, inclusive
	K        int    // minimum installations per figure; 0 means DefaultK
	// Epsilon > 0 adds Laplace noise to every published count, epsilon per
	// figure. 0 publishes exact counts (still thresholded).
	Epsilon float64
	// ContributionCap is the cap on one record's event.count that the
	// rollups applied; it is stated in the report.
	ContributionCap int64
	// Version, when set, keeps only the version rows of that version (the
	// dashboard filter).
	Version string
	// PublicRoots decides which issuers chain to a public root; nil means
	// the system's roots.
	PublicRoots *x509.CertPool

	GrowthWindow int     // days over which spreading is measured; default 7
	GrowthFactor float64 // growth that counts as spreading fast; default 2
	FailRate     float64 // failure rate that makes a campaign fail; default 0.2
	FailFactor   float64 // how many times the other campaigns' rate; default 3
	SuddenDays   int     // days after first sight for a sudden signer; default 3
	SuddenShare  float64 // share of daily active installations that is "many"; default 0.05
	NewCertDays  int     // days after issuance that count as new; default 30
	WideShare    float64 // share of active installations that is "widely"; default 0.05
	Now          func() time.Time
	noise        noiser
}

// ErrBadOptions wraps every invalid option.
var ErrBadOptions = errors.New("report: bad options")

// withDefaults validates o and fills its defaults.
func (o Options) withDefaults() (Options, error) {
	from, err := time.Parse(time.DateOnly, o.From)
	if err != nil {
		return o, fmt.Errorf("%w: from %q is not a date (YYYY-MM-DD)", ErrBadOptions, o.From)
	}
	to, err := time.Parse(time.DateOnly, o.To)
	if err != nil {
		return o, fmt.Errorf("%w: to %q is not a date (YYYY-MM-DD)", ErrBadOptions, o.To)
	}
	if to.Before(from) {
		return o, fmt.Errorf("%w: to %s is before from %s", ErrBadOptions, o.To, o.From)
	}
	if to.Sub(from) > 366*24*time.Hour {
		return o, fmt.Errorf("%w: a report covers at most 366 days", ErrBadOptions)
	}
	if o.K == 0 {
		o.K = DefaultK
	}
	if o.K < 2 {
		return o, fmt.Errorf("%w: k must be at least 2", ErrBadOptions)
	}
	if o.Epsilon < 0 {
		return o, fmt.Errorf("%w: epsilon must not be negative", ErrBadOptions)
	}
	def := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	defi := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defi(&o.GrowthWindow, 7)
	def(&o.GrowthFactor, 2)
	def(&o.FailRate, 0.2)
	def(&o.FailFactor, 3)
	defi(&o.SuddenDays, 3)
	def(&o.SuddenShare, 0.05)
	defi(&o.NewCertDays, 30)
	def(&o.WideShare, 0.05)
	if o.PublicRoots == nil {
		if pool, err := x509.SystemCertPool(); err == nil {
			o.PublicRoots = pool
		} else {
			o.PublicRoots = x509.NewCertPool()
		}
	}
	o.noise = newNoiser(o.Epsilon)
	return o, nil
}

// days lists the days from..to inclusive.
func days(from, to string) []string {
	f, _ := time.Parse(time.DateOnly, from)
	t, _ := time.Parse(time.DateOnly, to)
	var out []string
	for d := f; !d.After(t); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out
}

func addDays(day string, n int) string {
	d, _ := time.Parse(time.DateOnly, day)
	return d.AddDate(0, 0, n).Format(time.DateOnly)
}

func week(day string) string {
	d, _ := time.Parse(time.DateOnly, day)
	y, w := d.ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

func month(day string) string { return day[:7] }
