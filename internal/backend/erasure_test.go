package backend

import (
	"context"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/rollup"
)

// Erasure goes through every owner: the receipt lists each with its
// outcome, the forwarders' rows of the installation are gone on every
// engine, and the rollups of the days it touched stop counting it after
// one refresh pass, without a rebuild.
func TestErasureGoesThroughTheOwners(t *testing.T) {
	eachEngine(t, func(t *testing.T, opts Options) {
		ctx := context.Background()
		b, err := Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		m := referenceManifest(t)
		day := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Hour)
		gone, _ := seedTwoInstallations(t, b, day)
		if n := activeDistinct(t, b); n != 2 {
			t.Fatalf("distinct before erasure = %d, want 2", n)
		}
		dayText := day.Format(time.DateOnly)
		if err := b.Forward.MarkSent(ctx, "ga4", gone, dayText, day); err != nil {
			t.Fatal(err)
		}
		if err := b.Forward.AddDeadLetter(ctx, &forward.DeadLetter{Recipient: "ga4", InstallationID: gone, Day: dayText,
			Count: []byte(`{}`), CreatedAt: day}); err != nil {
			t.Fatal(err)
		}

		refresh := b.Refresher(nil)
		svc, owners, err := b.PrivacyService(m, nil, refresh)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := svc.Erase(ctx, gone, "owners-1", privacy.SourceOperator)
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]privacy.Outcome{}
		for _, o := range rec.Removed.Owners {
			listed[o.Owner] = o
		}
		for _, o := range owners.Owners() {
			if _, ok := listed[o.Key()]; !ok {
				t.Errorf("receipt does not list owner %s", o.Key())
			}
		}
		engine := string(b.Engine)
		if oc := listed[engine+":forward_dead_letters"]; oc.Status != privacy.OutcomeErased {
			t.Errorf("dead letters outcome = %+v", oc)
		}
		if oc := listed[engine+":rollup_cells"]; oc.Status != privacy.OutcomeScheduled {
			t.Errorf("rollup cells outcome = %+v", oc)
		}
		if sent, err := b.Forward.Sent(ctx, "ga4", gone, dayText); err != nil || sent {
			t.Errorf("forward_sent of the erased installation: %v %v", sent, err)
		}
		if n, err := b.Forward.CountDeadLetters(ctx, "ga4"); err != nil || n != 0 {
			t.Errorf("dead letters left: %d %v", n, err)
		}
		if got, err := refresh.Pending(ctx); err != nil || len(got) != 1 || got[0] != dayText {
			t.Fatalf("days marked = %v, want [%s]", got, dayText)
		}
		if n, err := refresh.Refresh(ctx); err != nil || n != 1 {
			t.Fatalf("refresh = %d %v", n, err)
		}
		if n := activeDistinct(t, b); n != 1 {
			t.Errorf("distinct after erasure and refresh = %d, want 1", n)
		}
		// The receipt as stored lists the owners too.
		stored, err := svc.Status(ctx, "owners-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(stored.Removed.Owners) != len(rec.Removed.Owners) {
			t.Errorf("stored receipt lists %d owners, want %d", len(stored.Removed.Owners), len(rec.Removed.Owners))
		}
	})
}

// Rollup cells older than the longest retention, expired certificates and
// dead letters past it are dropped by the owners' retention.
func TestDerivedDataObeysRetention(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, Options{Store: t.TempDir(), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := referenceManifest(t)
	longest := Longest(m)
	now := time.Now().UTC()
	old := now.Add(-longest - 48*time.Hour)
	cell := rollup.NewCell(rollup.Key{Day: old.Format(time.DateOnly), View: rollup.ViewActive, Dims: rollup.Dims("all", "all")})
	cell.Events = 1
	if err := b.Rollups.Apply(ctx, "rollup", 0, 1, rollup.Delta{Cells: []*rollup.Cell{cell},
		Certs: []rollup.Cert{{View: rollup.ViewTLSIssuer, ID: "c1", Subject: "s", NotAfter: old, DER: []byte("DER")}}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Forward.AddDeadLetter(ctx, &forward.DeadLetter{Recipient: "ga4", InstallationID: "x", Day: old.Format(time.DateOnly),
		Count: []byte(`{}`), CreatedAt: old}); err != nil {
		t.Fatal(err)
	}
	owners, err := b.PrivacyOwners(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := owners.RetainOwners(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if got["sqlite:rollup_cells"] != 2 || got["sqlite:forward_dead_letters"] != 1 {
		t.Errorf("retention dropped %v, want 2 rollup rows and 1 dead letter", got)
	}
	if cells, _ := b.Rollups.Cells(ctx, rollup.Query{}); len(cells) != 0 {
		t.Errorf("%d cells left", len(cells))
	}
	if certs, _ := b.Rollups.Certs(ctx, rollup.ViewTLSIssuer); len(certs) != 0 {
		t.Errorf("%d certificates left", len(certs))
	}
}
