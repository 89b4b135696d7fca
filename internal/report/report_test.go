package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/provisionhq/provision/internal/memlog"
	"github.com/provisionhq/provision/internal/report"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
)

var (
	fixtureOnce  sync.Once
	fixtureFleet *rolluptest.Fleet
	fixtureLog   *memlog.Log
)

func fleet(t *testing.T) (*rolluptest.Fleet, *memlog.Log, *rollup.MemoryStore) {
	t.Helper()
	fixtureOnce.Do(func() {
		f, err := rolluptest.NewFleet(rolluptest.FleetConfig{Installations: 200, Days: 28, Seed: 42})
		if err != nil {
			panic(err)
		}
		log := memlog.New()
		if err := f.Fill(context.Background(), log); err != nil {
			panic(err)
		}
		fixtureFleet, fixtureLog = f, log
	})
	store := rollup.NewMemoryStore([]byte("report-test-key-0123456789abcdef"))
	if _, err := (&rollup.Updater{Log: fixtureLog, Store: store}).Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	return fixtureFleet, fixtureLog, store
}

func opts(f *rolluptest.Fleet) report.Options {
	return report.Options{
		From:            f.Start.Format("2006-01-02"),
		To:              f.Start.AddDate(0, 0, f.Days-1).Format("2006-01-02"),
		PublicRoots:     f.PublicRoots,
		ContributionCap: rollup.DefaultWeightCap,
	}
}

func flagged(fs []report.Flag, kind, subject string) bool {
	return slices.ContainsFunc(fs, func(f report.Flag) bool { return f.Kind == kind && f.Subject == subject })
}

func TestQualityFlagsTheFailingCampaignOnly(t *testing.T) {
	f, _, store := fleet(t)
	q, err := report.BuildQuality(context.Background(), store, opts(f))
	if err != nil {
		t.Fatal(err)
	}
	if !flagged(q.Flags, "failing_campaign", f.Planted.FailingCampaign) {
		t.Errorf("failing campaign not flagged: %+v", q.Flags)
	}
	if flagged(q.Flags, "failing_campaign", f.Planted.GoodCampaign) {
		t.Errorf("good campaign flagged: %+v", q.Flags)
	}
	var bad *report.TaskRow
	for i := range q.Tasks {
		if q.Tasks[i].Value == f.Planted.FailingCampaign {
			bad = &q.Tasks[i]
		}
	}
	if bad == nil || bad.SuccessRate == nil || *bad.SuccessRate > 0.8 || bad.P95ms == nil || *bad.P95ms < 150000 || len(bad.Errors) == 0 {
		t.Fatalf("failing campaign row: %+v", bad)
	}
	// Within 1%: large merges run in the dense sketch.
	if p := q.Active.Period.Installs; p == nil || math.Abs(float64(*p-int64(f.Installations))) > 0.01*float64(f.Installations) {
		t.Errorf("period active = %v, want %d", p, f.Installations)
	}
	if len(q.Active.Daily) != f.Days || len(q.Active.Weekly) < 4 || len(q.Active.Monthly) != 1 {
		t.Errorf("series lengths %d/%d/%d", len(q.Active.Daily), len(q.Active.Weekly), len(q.Active.Monthly))
	}
}

func TestThreatsFlagThePlantedCasesOnly(t *testing.T) {
	f, _, store := fleet(t)
	th, err := report.BuildThreats(context.Background(), store, opts(f))
	if err != nil {
		t.Fatal(err)
	}
	p := f.Planted
	// Issuers are known by name only (the chain is not sent), so their
	// dates are unknown: new_widely_seen and expired_in_use cannot be
	// judged for them, and public_root is unknown.
	for _, want := range []struct{ kind, subject string }{
		{"interception_spreading", p.InterceptionRoot},
		{"signer_sudden", p.StolenSigner},
	} {
		if !flagged(th.Flags, want.kind, want.subject) {
			t.Errorf("%s not flagged for %s", want.kind, want.subject)
		}
	}
	for _, quiet := range []string{p.CorporateProxy, p.PublicIssuer, p.RenewedSigner, p.VendorSigner, p.ExpiredRoot} {
		for _, fl := range th.Flags {
			if fl.Subject == quiet {
				t.Errorf("normal certificate %s flagged %s", fl.Name, fl.Kind)
			}
		}
	}
	var pub, corp *report.IssuerRow
	for i := range th.Issuers {
		switch th.Issuers[i].ID {
		case p.PublicIssuer:
			pub = &th.Issuers[i]
		case p.CorporateProxy:
			corp = &th.Issuers[i]
		}
	}
	if pub == nil || pub.PublicRoot != nil || pub.Subject == "" {
		t.Errorf("public issuer row: %+v", pub)
	}
	if corp == nil || corp.PublicRoot != nil || corp.Growth == nil || *corp.Growth > 1.5 {
		t.Errorf("corporate proxy row: %+v", corp)
	}
}

// walk calls fn for every object of a decoded JSON document.
func walk(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, e := range x {
			walk(e, fn)
		}
	case []any:
		for _, e := range x {
			walk(e, fn)
		}
	}
}

func TestNothingBelowKIsPublished(t *testing.T) {
	f, _, store := fleet(t)
	o := opts(f)
	q, err := report.BuildQuality(context.Background(), store, o)
	if err != nil {
		t.Fatal(err)
	}
	th, err := report.BuildThreats(context.Background(), store, o)
	if err != nil {
		t.Fatal(err)
	}
	suppressed := 0
	for _, d := range []report.Document{q, th} {
		var buf bytes.Buffer
		if err := report.Write(&buf, d, "json"); err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		walk(doc, func(m map[string]any) {
			for _, key := range []string{"installations", "mismatch_installations"} {
				v, ok := m[key]
				if !ok {
					continue
				}
				if v == nil {
					suppressed++
					continue
				}
				if v.(float64) < float64(report.DefaultK) {
					t.Errorf("published %s=%v below k in %v", key, v, m)
				}
			}
		})
		// Nothing identifies an installation.
		if bytes.Contains(buf.Bytes(), []byte(rolluptest.InstallationID(5))) {
			t.Error("an installation id reached a report")
		}
	}
	if suppressed == 0 {
		t.Fatal("no cell was suppressed; the fleet plants several below k")
	}
	// The planted rare rows are left out whole: no label, no mark.
	for _, r := range q.Active.By {
		if r.Value == f.Planted.RareVersion || r.Value == "LU" {
			t.Errorf("active_by publishes %s=%s, below k", r.Dimension, r.Value)
		}
	}
	if slices.Contains(q.Versions, f.Planted.RareVersion) {
		t.Errorf("versions list publishes %s, below k", f.Planted.RareVersion)
	}
	// Countries come from task events, the only ones with a location.
	for _, r := range q.Tasks {
		if r.By == "country" && r.Value == "LU" {
			t.Errorf("tasks publish country %s, below k", r.Value)
		}
	}
	for _, r := range q.Licenses {
		if r.Value == f.Planted.RareLicenseSite {
			t.Errorf("licence providers publish %s, below k", r.Value)
		}
	}
	for _, e := range q.Errors {
		if e.Code == f.Planted.RareErrorCode {
			t.Errorf("errors publish %s, below k", e.Code)
		}
	}
	if q.Withheld.ActiveBy == 0 || q.Withheld.Licenses == 0 || q.Withheld.Errors == 0 {
		t.Errorf("withheld = %+v: the fleet plants rows below k in these tables", q.Withheld)
	}
	if th.SignersSuppressed+th.IssuersSuppressed != 0 {
		// every planted certificate reaches k in this fleet
		t.Logf("withheld issuers %d, signers %d", th.IssuersSuppressed, th.SignersSuppressed)
	}
}

func TestRebuildGivesByteIdenticalReports(t *testing.T) {
	f, log, store := fleet(t)
	ctx := context.Background()
	render := func() []byte {
		var buf bytes.Buffer
		q, err := report.BuildQuality(ctx, store, opts(f))
		if err != nil {
			t.Fatal(err)
		}
		th, err := report.BuildThreats(ctx, store, opts(f))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []report.Document{q, th} {
			if err := report.Write(&buf, d, "json"); err != nil {
				t.Fatal(err)
			}
		}
		return buf.Bytes()
	}
	before := render()
	if _, err := (&rollup.Updater{Log: log, Store: store, Batch: 1234}).Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if after := render(); !bytes.Equal(before, after) {
		t.Fatal("report JSON differs after a rebuild")
	}
}

func TestNoiseIsStatedAndApplied(t *testing.T) {
	f, _, store := fleet(t)
	o := opts(f)
	exact, err := report.BuildThreats(context.Background(), store, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Epsilon = 0.5
	noisy, err := report.BuildThreats(context.Background(), store, o)
	if err != nil {
		t.Fatal(err)
	}
	if noisy.Privacy.Noise != "laplace" || noisy.Privacy.Epsilon != 0.5 || exact.Privacy.Noise != "none" {
		t.Fatalf("privacy stated as %+v / %+v", noisy.Privacy, exact.Privacy)
	}
	differ := 0
	for i, r := range noisy.Issuers {
		for j, p := range r.Daily {
			e := exact.Issuers[i].Daily[j]
			if (p.Installs == nil) != (e.Installs == nil) {
				t.Fatal("noise changed which cells are suppressed")
			}
			if p.Installs != nil && *p.Installs != *e.Installs {
				differ++
			}
		}
	}
	if differ == 0 {
		t.Fatal("epsilon 0.5 changed no figure")
	}
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden from this run")

// TestGolden renders both reports in every format and compares them byte
// for byte with testdata/golden; go test -run TestGolden -update rewrites
// them after an intended change, which the diff then shows for review.
func TestGolden(t *testing.T) {
	f, _, store := fleet(t)
	q, err := report.BuildQuality(context.Background(), store, opts(f))
	if err != nil {
		t.Fatal(err)
	}
	th, err := report.BuildThreats(context.Background(), store, opts(f))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		name string
		doc  report.Document
	}{{"quality", q}, {"threats", th}} {
		for _, format := range []string{"json", "csv", "md", "html"} {
			t.Run(d.name+"."+format, func(t *testing.T) {
				var buf bytes.Buffer
				if err := report.Write(&buf, d.doc, format); err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join("testdata", "golden", d.name+"."+format), buf.Bytes())
			})
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from this run (go test -run TestGolden -update rewrites it):\n%s", path, firstDiff(want, got))
	}
}

// firstDiff shows the first line that differs.
func firstDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want %.300q\n  got  %.300q", i+1, wl, gl)
		}
	}
	return "same lines, different bytes"
}

// The HTML report is one self-contained file: nothing is fetched when it
// is opened, whatever the golden file holds.
func TestHTMLIsSelfContained(t *testing.T) {
	f, _, store := fleet(t)
	th, err := report.BuildThreats(context.Background(), store, opts(f))
	if err != nil {
		t.Fatal(err)
	}
	var h bytes.Buffer
	if err := report.Write(&h, th, "html"); err != nil {
		t.Fatal(err)
	}
	for _, banned := range []string{"<script", "src=\"http", "href=\"http", "@import"} {
		if strings.Contains(h.String(), banned) {
			t.Errorf("html is not self-contained: has %q", banned)
		}
	}
	if err := report.Write(&h, th, "pdf"); !errors.Is(err, report.ErrBadOptions) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	store := rollup.NewMemoryStore([]byte("k"))
	for _, o := range []report.Options{
		{From: "2026-13-01", To: "2026-12-01"},
		{From: "2026-10-02", To: "2026-10-01"},
		{From: "2026-10-01", To: "2026-10-02", K: 1},
		{From: "2026-10-01", To: "2026-10-02", Epsilon: -1},
		{From: "2020-01-01", To: "2026-10-02"},
	} {
		if _, err := report.BuildQuality(context.Background(), store, o); !errors.Is(err, report.ErrBadOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// A version filter leaves the task rows of other versions out; it does not
// count them as withheld below k.
func TestVersionFilterLeavesOtherVersionsOutNotWithheld(t *testing.T) {
	f, _, store := fleet(t)
	o := opts(f)
	all, err := report.BuildQuality(context.Background(), store, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Versions) == 0 {
		t.Fatal("the fleet publishes no version")
	}
	o.Version = all.Versions[0]
	one, err := report.BuildQuality(context.Background(), store, o)
	if err != nil {
		t.Fatal(err)
	}
	others := 0
	for _, r := range one.Tasks {
		if r.By == "version" && r.Value != o.Version {
			t.Errorf("task row of version %s with the filter on %s", r.Value, o.Version)
		}
		if r.By != "version" {
			others++
		}
	}
	if others == 0 {
		t.Error("the filter removed the campaign and country rows too")
	}
	// The planted rare version is withheld without the filter; with it,
	// its row is not there to withhold.
	if one.Withheld.Tasks >= all.Withheld.Tasks {
		t.Errorf("withheld task rows: %d with the filter, %d without", one.Withheld.Tasks, all.Withheld.Tasks)
	}
}
