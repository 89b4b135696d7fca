package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/memlog"
)

var testStart = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

func mustFleet(t testing.TB, installs, days int, seed uint64) *Fleet {
	t.Helper()
	f, err := New(Config{Installs: installs, Days: days, Seed: seed, Start: testStart})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// generate runs the whole period without a server and returns every batch
// and the truth.
func generate(t testing.TB, f *Fleet) ([]*Upload, *Truth) {
	t.Helper()
	truth := NewTruth(f, false)
	var all []*Upload
	for d := range f.Days {
		all = append(all, f.DayUploads(d, manifest.Reference().Version, truth)...)
	}
	return all, truth
}

func TestEveryBatchPassesTheReferenceManifest(t *testing.T) {
	m := manifest.Reference()
	uploads, truth := generate(t, mustFleet(t, 300, 21, 1))
	types := map[string]int{}
	for _, u := range uploads {
		if v := m.CheckBatch(&u.Batch); len(v) > 0 {
			t.Fatalf("batch of day %d: %v", u.Day, v[0])
		}
		for _, ev := range u.Batch.Events {
			types[ev.Type]++
		}
	}
	for _, et := range []string{"software", "os", "user_count", "ui_error", "license", "task", "tls_connection", "file_signature"} {
		if types[et] == 0 {
			t.Errorf("no %s event generated", et)
		}
	}
	if got, want := sum(types), truth.EventsGenerated(); got != want {
		t.Errorf("truth counts %d events, batches hold %d", want, got)
	}
}

// The wire form must pass too: the server sees JSON, where numbers are
// float64 and lists are []any.
func TestBatchesSurviveJSON(t *testing.T) {
	m := manifest.Reference()
	uploads, _ := generate(t, mustFleet(t, 50, 5, 2))
	for _, u := range uploads {
		data, err := json.Marshal(&u.Batch)
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			Events []struct {
				Fields map[string]any `json:"fields"`
			} `json:"events"`
		}
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		for i, ev := range b.Events {
			e := u.Batch.Events[i]
			e.Fields = ev.Fields
			if v := m.CheckEvent(nil, i, &e, u.Batch.Region); len(v) > 0 {
				t.Fatalf("after JSON: %v", v[0])
			}
		}
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func digest(t *testing.T, uploads []*Upload) [32]byte {
	t.Helper()
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, u := range uploads {
		if err := enc.Encode(&u.Batch); err != nil {
			t.Fatal(err)
		}
	}
	return [32]byte(h.Sum(nil))
}

func TestSameSeedSameFleet(t *testing.T) {
	a, _ := generate(t, mustFleet(t, 200, 10, 42))
	b, _ := generate(t, mustFleet(t, 200, 10, 42))
	c, _ := generate(t, mustFleet(t, 200, 10, 43))
	if digest(t, a) != digest(t, b) {
		t.Error("the same seed gave different batches")
	}
	if digest(t, a) == digest(t, c) {
		t.Error("different seeds gave the same batches")
	}
	fa, fb := mustFleet(t, 1, 1, 7), mustFleet(t, 1, 1, 7)
	if !bytes.Equal(fa.PKI.Interception.Root.DER, fb.PKI.Interception.Root.DER) {
		t.Error("the same seed gave different certificates")
	}
}

func TestCertificatesChain(t *testing.T) {
	f := mustFleet(t, 1, 30, 3)
	roots := x509.NewCertPool()
	for _, r := range f.PKI.PublicRoots {
		roots.AddCert(r.Cert)
	}
	at := testStart.Add(24 * time.Hour)
	for _, s := range f.PKI.Sites[:10] {
		inter := x509.NewCertPool()
		inter.AddCert(s.Intermediate.Cert)
		if _, err := s.Leaf.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: s.Host, CurrentTime: at}); err != nil {
			t.Errorf("%s: %v", s.Host, err)
		}
	}
	// The interception root is not public: its forged leaves do not verify.
	if _, err := f.PKI.Interception.Leaves[0].Cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: at.Add(20 * 24 * time.Hour)}); err == nil {
		t.Error("a forged certificate chains to a public root")
	}
	if f.PKI.Expired.Leaf.Cert.NotAfter.After(testStart) {
		t.Error("the expired certificate is not expired")
	}
}

func TestPlantedFindings(t *testing.T) {
	f := mustFleet(t, 2000, 30, 5)
	_, truth := generate(t, f)
	early := truth.Days[f.SpreadDay].Intercepted
	late := truth.Days[f.Days-1].Intercepted
	if early > 50 || late < 4*max(early, 10) {
		t.Errorf("interception root does not spread: %d on day %d, %d on the last day", early, f.SpreadDay, late)
	}
	for d := 0; d < f.SpreadDay; d++ {
		if n := truth.Days[d].Intercepted; n != 0 {
			t.Errorf("interception seen on day %d before it is planted (%d)", d, n)
		}
	}
	before, after := truth.Days[f.StolenDay-1].StolenSigner, truth.Days[f.StolenDay+2].StolenSigner
	if after < 20*max(before, 1) {
		t.Errorf("stolen signer does not appear suddenly: %d before, %d after", before, after)
	}
	for _, cp := range campaigns {
		c := truth.CampaignTotals(cp.ID)
		if c.Attempts == 0 {
			t.Errorf("campaign %s never ran", cp.ID)
			continue
		}
		rate := float64(c.Failures) / float64(c.Attempts)
		if failing := cp.ID == FailingCampaign; failing != (rate > 0.4) {
			t.Errorf("campaign %s failure rate %.2f (failing: %v)", cp.ID, rate, failing)
		}
	}
	if truth.Installations == 0 || truth.Installations > 2000 {
		t.Errorf("distinct installations %d", truth.Installations)
	}
	v := truth.Days[f.Days-1].ByVersion
	if v[releases[3]] <= v[releases[0]] {
		t.Errorf("the fix release has not rolled out by the end: %v", v)
	}
}

func TestGeoIPMapsFleetAddresses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sim.mmdb")
	var buf bytes.Buffer
	if err := WriteGeoIP(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rec struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
		Subdivisions []struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"subdivisions"`
	}
	f := mustFleet(t, 300, 1, 9)
	for _, in := range f.Installations {
		rec.Country.ISOCode, rec.Subdivisions = "", nil
		if err := db.Lookup(in.Addr).Decode(&rec); err != nil {
			t.Fatal(err)
		}
		if rec.Country.ISOCode != in.Country || len(rec.Subdivisions) != 1 || rec.Subdivisions[0].ISOCode != in.Subdivision {
			t.Fatalf("installation %d: looked up %+v, want %s-%s", in.Index, rec, in.Country, in.Subdivision)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Installs: 0, Days: 1, Start: testStart},
		{Installs: 1, Days: 0, Start: testStart},
		{Installs: 1, Days: 1},
		{Installs: 1, Days: 1, Start: testStart.Add(time.Hour)},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// The fleet's planted findings and user counts come out of the real
// rollups and reports as the truth says.
func TestReportsShowTheTruth(t *testing.T) {
	f := mustFleet(t, 1500, 21, 8)
	log := memlog.New()
	uploads, truth := generate(t, f)
	m := manifest.Reference()
	ctx := context.Background()
	for _, u := range uploads {
		// The server sees the batch as JSON decodes it.
		data, err := json.Marshal(&u.Batch)
		if err != nil {
			t.Fatal(err)
		}
		var b provision.Batch
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		// The location goes where ingest would put it.
		ingest.AddLocation(m, b.Region, geo.Location{Country: u.Installation.Country, Subdivision: u.Installation.Subdivision}, b.Events)
		sub := &provision.Submission{BatchID: b.ID, InstallationID: b.InstallationID, Region: b.Region,
			ManifestVersion: b.ManifestVersion, ReceivedAt: b.SentAt, Events: b.Events, Response: []byte("{}")}
		if _, _, err := log.Append(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	q, th, err := BuildReports(ctx, log, f)
	if err != nil {
		t.Fatal(err)
	}
	if problems := truth.CompareReports(q, th); len(problems) > 0 {
		t.Errorf("reports disagree with the truth:\n%s", strings.Join(problems, "\n"))
	}
	for _, fl := range th.Flags {
		t.Logf("threat flag %s %s: %s", fl.Kind, fl.Name, fl.Reason)
	}
	for _, fl := range q.Flags {
		t.Logf("quality flag %s %s: %s", fl.Kind, fl.Subject, fl.Reason)
	}
}
