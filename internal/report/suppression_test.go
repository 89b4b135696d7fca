package report_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/memlog"
	"github.com/provisionhq/provision/internal/report"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
)

// rareMarkers are values that only three installations report, one for
// each kind of table row: below the default k, they must not appear in any
// report, in any format.
var rareMarkers = []string{
	"9.9.9-rare",                          // version: active_by, versions list, tasks by version
	"99 RARE",                             // OS version: active_by
	"KB9999991",                           // update package: update_coverage
	"https://rare-reseller.example",       // licence site
	"rare_failure", "RARE77", "menu.rare", // error type, code, control
	"rare-campaign",         // task campaign
	"rare_locked", "0xRARE", // task error type and code
}

// rareCountry is the country of the three installations: a country row
// below k under a published issuer or signer.
const rareCountry = "XQ"

// rareFleet is a small fleet with three installations that report the
// rare markers on three days.
func rareFleet(t *testing.T) (*rolluptest.Fleet, *rollup.MemoryStore) {
	t.Helper()
	ctx := context.Background()
	f, err := rolluptest.NewFleet(rolluptest.FleetConfig{Installations: 100, Days: 21, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	log := memlog.New()
	if err := f.Fill(ctx, log); err != nil {
		t.Fatal(err)
	}
	// The fleet's own TLS connection and signed file, seen again by the
	// rare installations from their rare country.
	recs, err := log.Read(ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var tlsEv, fileEv provision.Event
	for _, r := range recs {
		switch r.Event.Type {
		case "tls_connection":
			tlsEv = r.Event
		case "file_signature":
			fileEv = r.Event
		}
	}
	for i := range 3 {
		for d := 2; d < 5; d++ {
			at := f.Start.AddDate(0, 0, d).Add(10 * time.Hour)
			ev := func(typ string, fields map[string]any) provision.Event {
				return provision.Event{ID: fmt.Sprintf("rare-%d-%d-%s", i, d, typ), Type: typ, Time: at, Fields: fields}
			}
			tls, file := tlsEv, fileEv
			tls.ID, file.ID = fmt.Sprintf("rare-tls-%d-%d", i, d), fmt.Sprintf("rare-file-%d-%d", i, d)
			evs := []provision.Event{
				ev("user_count", map[string]any{"software.name": "Secure Connection", "software.version": "9.9.9-rare", "os.version": "99 RARE"}),
				ev("software", map[string]any{"software.type": "vpn", "software.name": "Secure Connection", "software.version": "9.9.9-rare", "software.edition": "free", "software.localization": "en-GB"}),
				ev("os", map[string]any{"os.type": "windows", "os.version": "99 RARE", "os.edition": "Home", "os.update_packages": []any{"KB9999991"}}),
				ev("license", map[string]any{"license.provider_site": "https://rare-reseller.example"}),
				ev("ui_error", map[string]any{"error.type": "rare_failure", "error.code": "RARE77", "ui.control_id": "menu.rare", "event.count": float64(2)}),
				ev("task", map[string]any{"task.type": "upgrade", "task.status": "failure", "task.duration": float64(90000), "task.campaign_id": "rare-campaign",
					"task.error_type": "rare_locked", "task.error_code": "0xRARE", "software.version": "9.9.9-rare", "os.type": "windows", "os.version": "99 RARE",
					provision.ItemCountry: rareCountry}),
				tls, file,
			}
			sub := &provision.Submission{BatchID: fmt.Sprintf("rare-%d-%d", i, d), InstallationID: fmt.Sprintf("%08x-0000-4000-8000-00000000rare", i),
				Region: provision.RegionEU, ReceivedAt: at, Events: evs, Response: []byte(`{}`)}
			if _, _, err := log.Append(ctx, sub); err != nil {
				t.Fatal(err)
			}
		}
	}
	store := rollup.NewMemoryStore([]byte("report-test-key-0123456789abcdef"))
	if _, err := (&rollup.Updater{Log: log, Store: store}).Update(ctx); err != nil {
		t.Fatal(err)
	}
	return f, store
}

// render writes both reports in every format, and the dashboard's section.
func render(t *testing.T, store rollup.Store, o report.Options) map[string]string {
	t.Helper()
	q, err := report.BuildQuality(context.Background(), store, o)
	if err != nil {
		t.Fatal(err)
	}
	th, err := report.BuildThreats(context.Background(), store, o)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range []report.Document{q, th} {
		for _, format := range report.Formats {
			var b bytes.Buffer
			if err := report.Write(&b, d, format); err != nil {
				t.Fatal(err)
			}
			out[d.Heading()+" "+format] = b.String()
		}
		sec, err := report.SectionHTML(d)
		if err != nil {
			t.Fatal(err)
		}
		out[d.Heading()+" section"] = string(sec)
	}
	return out
}

// A value reported by fewer than k installations appears nowhere: not as a
// figure, not as a row label, not in the versions list, not as a country of
// a published certificate, in no table and no format.
func TestNoValueFromACellBelowKAnywhere(t *testing.T) {
	f, store := rareFleet(t)
	o := opts(f)

	// The markers do reach the reports once k lets them: the test can fail.
	low := o
	low.K = 2
	for _, m := range append(rareMarkers, rareCountry) {
		found := false
		for _, doc := range render(t, store, low) {
			found = found || strings.Contains(doc, m)
		}
		if !found {
			t.Fatalf("marker %q is not in the reports even at k=2; the fleet does not plant it", m)
		}
	}

	for name, doc := range render(t, store, o) {
		for _, m := range rareMarkers {
			if strings.Contains(doc, m) {
				t.Errorf("%s publishes %q, reported by 3 installations (k=%d)", name, m, report.DefaultK)
			}
		}
		for _, cell := range []string{rareCountry + ":", `"` + rareCountry + `"`, "| " + rareCountry + " |", "<td>" + rareCountry + "</td>", "," + rareCountry + ","} {
			if strings.Contains(doc, cell) {
				t.Errorf("%s publishes the country %s, seen on 3 installations", name, rareCountry)
			}
		}
		if strings.Contains(doc, "mismatch_suppressed") {
			t.Errorf("%s tells that a mismatch below k exists", name)
		}
	}

	q, err := report.BuildQuality(context.Background(), store, o)
	if err != nil {
		t.Fatal(err)
	}
	w := q.Withheld
	if w.ActiveBy == 0 || w.UpdateCoverage == 0 || w.Licenses == 0 || w.Errors == 0 || w.Tasks == 0 || w.TaskErrors == 0 {
		t.Errorf("withheld rows %+v: every table has a planted row below k", w)
	}
}
