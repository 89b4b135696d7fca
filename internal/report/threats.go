package report

import (
	"context"
	"crypto/x509"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/provisionhq/provision/internal/rollup"
)

// Threats is the threat-trend report.
type Threats struct {
	Report            string      `json:"report"`
	From              string      `json:"from"`
	To                string      `json:"to"`
	Privacy           Privacy     `json:"privacy"`
	Flags             []Flag      `json:"flags"`
	Issuers           []IssuerRow `json:"tls_issuers"`
	IssuersSuppressed int         `json:"tls_issuers_suppressed"`
	Signers           []SignerRow `json:"file_signers"`
	SignersSuppressed int         `json:"file_signers_suppressed"`
}

// CertFacts are what a public certificate says about itself.
type CertFacts struct {
	ID         string `json:"id"`
	Subject    string `json:"subject"`
	Issuer     string `json:"issuer,omitempty"`
	SelfSigned bool   `json:"self_signed"`
	NotBefore  string `json:"not_before,omitempty"`
	NotAfter   string `json:"not_after,omitempty"`
}

// IssuerRow is one issuer of presented TLS chains.
type IssuerRow struct {
	CertFacts
	PublicRoot  *bool    `json:"public_root"` // nil when only the issuer's name is known
	FirstSeen   string   `json:"first_seen"`
	LastSeen    string   `json:"last_seen"`
	Installs    *int64   `json:"installations"`
	Connections *int64   `json:"connections"`
	Growth      *float64 `json:"growth"`
	Daily       []Point  `json:"daily"`
	Flags       []string `json:"flags"`
}

// SignerRow is one code-signing certificate of scanned files.
type SignerRow struct {
	CertFacts
	FirstSeen string   `json:"first_seen"`
	LastSeen  string   `json:"last_seen"`
	Installs  *int64   `json:"installations"`
	Files     *int64   `json:"files"`
	Daily     []Point  `json:"daily"`
	Flags     []string `json:"flags"`
}

// BuildThreats makes the threat-trend report for o's period.
func BuildThreats(ctx context.Context, s rollup.Store, o Options) (*Threats, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	set, err := loadSeries(ctx, s, rollup.Query{
		Views: []string{rollup.ViewActive, rollup.ViewTLSIssuer, rollup.ViewFileSigner},
		To:    o.To,
	})
	if err != nil {
		return nil, err
	}
	issuers, err := s.Certs(ctx, rollup.ViewTLSIssuer)
	if err != nil {
		return nil, fmt.Errorf("report: read certificates: %w", err)
	}
	signers, err := s.Certs(ctx, rollup.ViewFileSigner)
	if err != nil {
		return nil, fmt.Errorf("report: read certificates: %w", err)
	}
	t := &Threats{Report: "threats", From: o.From, To: o.To, Privacy: privacyOf(o), Flags: []Flag{}, Issuers: []IssuerRow{}, Signers: []SignerRow{}}

	active := set.get(rollup.ViewActive, allDims)
	var dataStart string
	var activeRange int64
	dailyActive := map[string]int64{}
	if active != nil {
		dataStart, _ = active.firstLast()
		activeRange = active.merged(o.From, o.To).Distinct()
		for d := range active.byDay {
			dailyActive[d] = active.distinctOn(d)
		}
	}

	var seen []seenCert
	seen, t.IssuersSuppressed = o.seenCerts(set, rollup.ViewTLSIssuer, "spki", issuers)
	for _, s := range seen {
		t.Issuers = append(t.Issuers, o.issuerRow(s, activeRange, t))
	}
	seen, t.SignersSuppressed = o.seenCerts(set, rollup.ViewFileSigner, "thumbprint", signers)
	for _, s := range seen {
		t.Signers = append(t.Signers, o.signerRow(s, dataStart, dailyActive, t))
	}
	sort.SliceStable(t.Issuers, func(i, j int) bool { return *t.Issuers[i].Installs > *t.Issuers[j].Installs })
	sort.SliceStable(t.Signers, func(i, j int) bool { return *t.Signers[i].Installs > *t.Signers[j].Installs })
	return t, nil
}

func factsOf(c rollup.Cert) CertFacts {
	f := CertFacts{ID: c.ID, Subject: c.Subject, Issuer: c.Issuer, SelfSigned: c.SelfSigned}
	if !c.NotBefore.IsZero() {
		f.NotBefore = c.NotBefore.UTC().Format(time.DateOnly)
		f.NotAfter = c.NotAfter.UTC().Format(time.DateOnly)
	}
	return f
}

// chainsToPublicRoot tells whether the issuer is, or is vouched for by, a
// root in the public pool; expiry does not matter here.
func (o Options) chainsToPublicRoot(c rollup.Cert) *bool {
	if c.DER == nil {
		return nil
	}
	cert, err := x509.ParseCertificate(c.DER)
	if err != nil {
		return nil
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: o.PublicRoots, CurrentTime: cert.NotBefore.Add(time.Minute), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	ok := err == nil
	return &ok
}

// inRange reports the first and last day sr was seen up to o.To, and
// whether it was seen within the period at all.
func (o Options) seen(sr *series) (first, last string, ok bool) {
	first, last = sr.firstLast()
	return first, last, last >= o.From
}

// seenCert is a certificate seen in the period whose installations reach
// k, with what its row is made from.
type seenCert struct {
	p           published
	c           rollup.Cert
	sr          *series      // its series, keyed by its id
	m           *rollup.Cell // the series merged over the period
	first, last string       // the first and last day it was seen, up to o.To
}

// seenCerts returns the certificates of the view (whose series are keyed
// by dim and the certificate's id) seen in the period whose installations
// reach k, and how many seen ones are withheld: whole, as their identity is
// not published either.
func (o Options) seenCerts(set *seriesSet, view, dim string, certs []rollup.Cert) (out []seenCert, withheld int) {
	for _, c := range certs {
		sr := set.get(view, rollup.Dims(dim, c.ID))
		if sr == nil {
			continue
		}
		first, last, ok := o.seen(sr)
		if !ok {
			continue
		}
		m := sr.merged(o.From, o.To)
		p, ok := o.publish(m.Distinct())
		if !ok {
			withheld++
			continue
		}
		out = append(out, seenCert{p: p, c: c, sr: sr, m: m, first: first, last: last})
	}
	return out, withheld
}

func (o Options) issuerRow(s seenCert, activeRange int64, t *Threats) IssuerRow {
	p, c, sr, m, first, last := s.p, s.c, s.sr, s.m, s.first, s.last
	n := p.installs
	row := IssuerRow{CertFacts: factsOf(c), PublicRoot: o.chainsToPublicRoot(c), FirstSeen: first, LastSeen: last,
		Installs: p.installations(), Connections: o.figure(p, m.Weight, o.ContributionCap), Flags: []string{}}
	row.Daily = o.dailyPoints(sr)

	// Growth: installations on the last day of the window against the
	// first day of the window it was seen on.
	start := max(addDays(o.To, 1-o.GrowthWindow), o.From)
	var firstN, lastN int64
	seenDays := 0
	for _, d := range days(start, o.To) {
		// Only days that reach k take part: a ratio to a withheld day
		// would publish that day's count.
		v := sr.distinctOn(d)
		if v >= int64(o.K) {
			seenDays++
			if firstN == 0 {
				firstN = v
			}
			lastN = v
		}
	}
	if firstN > 0 && seenDays >= 3 {
		g := math.Round(float64(lastN)/float64(firstN)*100) / 100
		row.Growth = &g
	}
	name := c.Subject
	// An issuer known only by its name (the terms let only the certificate
	// that established the connection be sent, not its chain) is not known
	// to chain to a public root: it is judged by its spread alone.
	if (row.PublicRoot == nil || !*row.PublicRoot) && row.Growth != nil && *row.Growth >= o.GrowthFactor && lastN >= int64(o.K) {
		row.Flags = append(row.Flags, "interception_spreading")
		t.Flags = append(t.Flags, Flag{Kind: "interception_spreading", Subject: c.ID, Name: name,
			Reason: fmt.Sprintf("not known to chain to a public root; installations grew %.1fx over the last %d days", *row.Growth, o.GrowthWindow)})
	}
	if !c.NotBefore.IsZero() {
		firstT, _ := time.Parse(time.DateOnly, first)
		if firstT.Sub(c.NotBefore) <= time.Duration(o.NewCertDays)*24*time.Hour && float64(n) >= o.WideShare*float64(activeRange) {
			row.Flags = append(row.Flags, "new_widely_seen")
			t.Flags = append(t.Flags, Flag{Kind: "new_widely_seen", Subject: c.ID, Name: name,
				Reason: fmt.Sprintf("issued %s, first seen %s, on %.0f%% of active installations", c.NotBefore.Format(time.DateOnly), first, 100*float64(p.count)/float64(max(activeRange, 1)))})
		}
		lastT, _ := time.Parse(time.DateOnly, last)
		if c.NotAfter.Before(lastT) {
			row.Flags = append(row.Flags, "expired_in_use")
			t.Flags = append(t.Flags, Flag{Kind: "expired_in_use", Subject: c.ID, Name: name,
				Reason: fmt.Sprintf("expired %s, still presented on %s", c.NotAfter.Format(time.DateOnly), last)})
		}
	}
	return row
}

func (o Options) signerRow(s seenCert, dataStart string, dailyActive map[string]int64, t *Threats) SignerRow {
	p, c, sr, m, first, last := s.p, s.c, s.sr, s.m, s.first, s.last
	row := SignerRow{CertFacts: factsOf(c), FirstSeen: first, LastSeen: last,
		Installs: p.installations(), Files: o.figure(p, m.Weight, o.ContributionCap), Flags: []string{}}
	row.Daily = o.dailyPoints(sr)
	// Sudden: absent when the data began, then on many machines within a
	// few days of its first sight.
	if first > dataStart {
		var peak, activeThen int64
		for _, d := range days(first, addDays(first, o.SuddenDays-1)) {
			if v := sr.distinctOn(d); v > peak {
				peak, activeThen = v, dailyActive[d]
			}
		}
		// The reason prints the peak day's figure as published (noised
		// when asked), never the exact count behind it.
		if pp, ok := o.publish(peak); ok && float64(peak) >= o.SuddenShare*float64(activeThen) {
			row.Flags = append(row.Flags, "signer_sudden")
			t.Flags = append(t.Flags, Flag{Kind: "signer_sudden", Subject: c.ID, Name: c.Subject,
				Reason: fmt.Sprintf("first seen %s, on %d installations within %d days", first, *pp.installations(), o.SuddenDays)})
		}
	}
	return row
}
