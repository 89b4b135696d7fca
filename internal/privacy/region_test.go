package privacy_test

import (
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/privacy"
)

// TestRegionalTermsAreEnforcedAndRecorded uses a manifest that declares
// software.localization for the EU terms only: a Brazilian batch may not
// carry it, an EU batch may, and each accepted event is stored with the
// region profile it was accepted under.
func TestRegionalTermsAreEnforcedAndRecorded(t *testing.T) {
	m, err := manifest.Load("testdata/eu-only.yaml")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	withLocalization := func() provision.Event {
		ev := softwareEvent(at)
		delete(ev.Fields, "location.country") // server-derived, added after validation
		ev.Fields["software.localization"] = "pt-BR"
		return ev
	}
	batch := func(region string) provision.Batch {
		return provision.Batch{ID: nextID("b"), InstallationID: newInstallationID(), Region: region,
			ManifestVersion: m.Version, SentAt: at, Events: []provision.Event{withLocalization()}}
	}

	br := batch(provision.RegionBrazil)
	vs := m.CheckBatch(&br)
	if len(vs) != 1 || vs[0].Code != manifest.CodeRegionNotDeclared || vs[0].Path != "fields.software.localization" || vs[0].Index != 0 {
		t.Fatalf("br batch: violations %v, want one region_not_declared for software.localization", vs)
	}
	eu := batch(provision.RegionEU)
	if vs := m.CheckBatch(&eu); len(vs) != 0 {
		t.Fatalf("eu batch: violations %v", vs)
	}
	// The same item without the localization is fine in Brazil.
	brOK := batch(provision.RegionBrazil)
	delete(brOK.Events[0].Fields, "software.localization")
	if vs := m.CheckBatch(&brOK); len(vs) != 0 {
		t.Fatalf("br batch without the EU-only item: %v", vs)
	}

	// What is accepted is stored with its region profile, and export
	// shows the profile of each submission.
	r := newRig(t)
	r.appendBatch(t, eu.InstallationID, eu.Region, eu.Events...)
	r.appendBatch(t, brOK.InstallationID, brOK.Region, brOK.Events...)
	regions := map[string]string{}
	for _, rec := range r.logRecords(t) {
		regions[rec.InstallationID] = rec.Region
	}
	if regions[eu.InstallationID] != provision.RegionEU || regions[brOK.InstallationID] != provision.RegionBrazil {
		t.Errorf("stored regions %v", regions)
	}
	svc, err := privacy.New(privacy.Options{Store: r.ps, Manifest: m})
	if err != nil {
		t.Fatal(err)
	}
	x, err := svc.Export(t.Context(), brOK.InstallationID)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Submissions) != 1 || x.Submissions[0].Region != provision.RegionBrazil {
		t.Errorf("export submissions %+v", x.Submissions)
	}
}
