package backend

import (
	"context"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/privacy"
)

// The days an erasure makes stale are kept in the store: a process that
// stops after the erasure and before the refresh pass refreshes them when
// it starts again, and days an erasure still holds are not refreshed
// before it completes.
func TestRefreshMarksSurviveARestart(t *testing.T) {
	eachEngine(t, func(t *testing.T, opts Options) {
		ctx := context.Background()
		b, err := Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		m := referenceManifest(t)
		day := time.Now().UTC().Add(-24 * time.Hour).Truncate(24 * time.Hour).Add(time.Hour)
		dayText := day.Format(time.DateOnly)
		gone, _ := seedTwoInstallations(t, b, day)
		if n := activeDistinct(t, b); n != 2 {
			t.Fatalf("distinct before erasure = %d, want 2", n)
		}

		// A day held by an erasure still under way is not refreshed.
		before := b.Refresher(nil)
		if before.Marks == nil {
			t.Fatal("the refresher keeps no marks in the store")
		}
		if err := before.HoldDays(ctx, "under-way", []string{"2001-02-03"}); err != nil {
			t.Fatal(err)
		}
		if n, err := before.Refresh(ctx); err != nil || n != 0 {
			t.Fatalf("refresh of a held day = %d %v, want 0", n, err)
		}

		svc, _, err := b.PrivacyService(m, nil, before)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Erase(ctx, gone, "marks-1", privacy.SourceOperator); err != nil {
			t.Fatal(err)
		}
		// The process stops before the refresh pass.
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		opts.Create = false
		b2, err := Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer b2.Close()
		if n := activeDistinct(t, b2); n != 2 {
			t.Fatalf("distinct after the erasure, before any refresh = %d, want 2 (the test would show nothing)", n)
		}
		after := b2.Refresher(nil)
		if got, err := after.Pending(ctx); err != nil || len(got) != 1 || got[0] != dayText {
			t.Fatalf("days pending after the restart = %v %v, want [%s]", got, err, dayText)
		}
		if n, err := after.Refresh(ctx); err != nil || n != 1 {
			t.Fatalf("refresh after the restart = %d %v, want 1 day", n, err)
		}
		if n := activeDistinct(t, b2); n != 1 {
			t.Errorf("distinct after the refresh = %d, want 1", n)
		}
		if n, err := after.Refresh(ctx); err != nil || n != 0 {
			t.Errorf("a second pass refreshed %d days (%v): the marks were not dropped", n, err)
		}
		if err := after.ReleaseDays(ctx, "under-way", nil); err != nil {
			t.Fatal(err)
		}
		if got, err := after.Pending(ctx); err != nil || len(got) != 1 || got[0] != "2001-02-03" {
			t.Errorf("days pending once the held request released = %v %v", got, err)
		}
	})
}
