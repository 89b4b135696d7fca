package privacy_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/sqlite"
)

// submitDays has the installation submit one software and two TLS events a
// day for the given number of days, ending at the clock's now.
func (r *rig) submitDays(t *testing.T, id string, days int) {
	t.Helper()
	now := r.clock.Now()
	for d := days - 1; d >= 0; d-- {
		at := now.Add(-time.Duration(d) * day)
		r.appendBatch(t, id, provision.RegionEU, softwareEvent(at), tlsEvent(at), tlsEvent(at))
	}
}

func TestEraseRemovesEverythingAndGivesReceipt(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	gone, kept := newInstallationID(), newInstallationID()
	r.submitDays(t, gone, 5)
	r.submitDays(t, kept, 5)
	fs := sqlite.NewForwardState(r.sq.DB())
	if err := fs.MarkSent(ctx, "google_analytics", gone, "2026-03-01", r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := fs.MarkSent(ctx, "google_analytics", kept, "2026-03-01", r.clock.Now()); err != nil {
		t.Fatal(err)
	}

	rec, err := r.svc.Erase(ctx, gone, "req-1", privacy.SourceDevice)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != privacy.StatusComplete || rec.ID != "req-1" || rec.CompletedAt.IsZero() {
		t.Fatalf("receipt = %+v", rec)
	}
	if rec.IDHash != privacy.IDHash(gone) || strings.Contains(rec.IDHash, gone) {
		t.Fatalf("receipt hash %q", rec.IDHash)
	}
	rm := rec.Removed
	if rm.Events["software"] != 5 || rm.Events["tls_connection"] != 10 {
		t.Errorf("events removed = %v, want software 5, tls_connection 10", rm.Events)
	}
	// software: type, name, version per software event; secure_connections:
	// certificate and pin per TLS event; location: country on every event
	// and subdivision on TLS events; installation: one id per event.
	want := map[string]int64{"software": 15, "secure_connections": 20, "user_activity": 10, "location": 25, "installation": 15}
	for cat, n := range want {
		if rm.Categories[cat] != n {
			t.Errorf("categories[%s] = %d, want %d (all: %v)", cat, rm.Categories[cat], n, rm.Categories)
		}
	}
	if rm.Records["forward_sent"] != 1 {
		t.Errorf("records = %v, want forward_sent 1", rm.Records)
	}

	// Log replay from 0: nothing of gone, everything of kept.
	recs := r.logRecords(t)
	if n := countFor(recs, gone); n != 0 {
		t.Errorf("log replay returns %d records of the erased installation", n)
	}
	if n := countFor(recs, kept); n != 15 {
		t.Errorf("log replay returns %d records of the other installation, want 15", n)
	}
	if sent, _ := fs.Sent(ctx, "google_analytics", gone, "2026-03-01"); sent {
		t.Error("forward marker of the erased installation survived")
	}
	if sent, _ := fs.Sent(ctx, "google_analytics", kept, "2026-03-01"); !sent {
		t.Error("forward marker of the other installation was removed")
	}
	for _, f := range []func(context.Context, string) (bool, error){r.svc.Erased, r.svc.Suppressed} {
		if ok, err := f(ctx, gone); err != nil || !ok {
			t.Errorf("erased/suppressed(gone) = %v, %v", ok, err)
		}
		if ok, err := f(ctx, kept); err != nil || ok {
			t.Errorf("erased/suppressed(kept) = %v, %v", ok, err)
		}
	}
	x, err := r.svc.Export(ctx, gone)
	if err != nil {
		t.Fatal(err)
	}
	if !x.Erased || len(x.Items) != 0 || len(x.Other) != 0 || len(x.Submissions) != 0 {
		t.Errorf("export after erasure = %+v", x)
	}

	got, err := r.svc.Status(ctx, "req-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != privacy.StatusComplete || got.Removed.Events["software"] != 5 || !got.CompletedAt.Equal(rec.CompletedAt) {
		t.Errorf("status = %+v", got)
	}
	if _, err := r.svc.Status(ctx, "nope"); !errors.Is(err, provision.ErrNotFound) {
		t.Errorf("status of unknown request: %v", err)
	}
	// The pending copy of the id is gone once complete.
	var held sql.NullString
	if err := r.sq.DB().QueryRow(`SELECT pending_installation_id FROM privacy_requests WHERE request_id = 'req-1'`).Scan(&held); err != nil || held.Valid {
		t.Errorf("pending installation id still held: %v %v", held, err)
	}
	if n, err := privacy.VerifyAudit(ctx, r.ps); err != nil || n != 1 {
		t.Errorf("audit verify = %d, %v", n, err)
	}
}

func TestErasedInstallationDoesNotComeBack(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	id := newInstallationID()
	r.submitDays(t, id, 2)
	if _, err := r.svc.Erase(ctx, id, "", privacy.SourceOperator); err != nil {
		t.Fatal(err)
	}
	// A batch from the outbox that was still on its way, a forwarder that
	// had read the record before the erasure, and a dead letter.
	r.appendBatch(t, id, provision.RegionEU, softwareEvent(r.clock.Now()))
	fs := sqlite.NewForwardState(r.sq.DB())
	if err := fs.MarkSent(ctx, "third_party", id, "2026-03-01", r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n := countFor(r.logRecords(t), id); n != 0 {
		t.Errorf("%d records of the erased installation came back", n)
	}
	if sent, _ := fs.Sent(ctx, "third_party", id, "2026-03-01"); sent {
		t.Error("a forward marker of the erased installation came back")
	}
	var n int
	if err := r.sq.DB().QueryRow(`SELECT (SELECT count(*) FROM log_batches WHERE installation_id = ?1) + (SELECT count(*) FROM batch_keys WHERE installation_id = ?1)`, id).Scan(&n); err != nil || n != 0 {
		t.Errorf("the log holds %d rows of the erased installation (%v)", n, err)
	}
	// Another installation is still stored.
	other := newInstallationID()
	r.appendBatch(t, other, provision.RegionEU, softwareEvent(r.clock.Now()))
	if n := countFor(r.logRecords(t), other); n != 1 {
		t.Errorf("other installation: %d records, want 1", n)
	}
}

func TestEraseIsIdempotentPerRequest(t *testing.T) { forEachStore(t, testEraseIsIdempotentPerRequest) }

func testEraseIsIdempotentPerRequest(t *testing.T, r *rig) {
	ctx := t.Context()
	id := newInstallationID()
	r.submitDays(t, id, 1)
	first, err := r.svc.Erase(ctx, id, "same", privacy.SourceDevice)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.svc.Erase(ctx, id, "same", privacy.SourceDevice)
	if err != nil {
		t.Fatal(err)
	}
	if !again.CompletedAt.Equal(first.CompletedAt) || again.Removed.Events["software"] != 1 {
		t.Errorf("repeat = %+v, first = %+v", again, first)
	}
	if _, err := r.svc.Erase(ctx, newInstallationID(), "same", privacy.SourceDevice); !errors.Is(err, privacy.ErrRequestConflict) {
		t.Errorf("same request id, other installation: %v", err)
	}
	// A second request for the same installation is its own receipt with
	// nothing left to remove.
	second, err := r.svc.Erase(ctx, id, "other", privacy.SourceOperator)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Removed.Events) != 0 {
		t.Errorf("second erasure removed %v", second.Removed.Events)
	}
	if n, err := privacy.VerifyAudit(ctx, r.ps); err != nil || n != 2 {
		t.Errorf("audit = %d entries, %v; want 2", n, err)
	}
}

func TestEraseRejectsBadIDs(t *testing.T) {
	r := newRig(t)
	for _, id := range []string{"", "not-a-uuid", strings.ToUpper(newInstallationID()), "00000000-0000-1000-8000-000000000000"} {
		if _, err := r.svc.Erase(t.Context(), id, "r", privacy.SourceDevice); !errors.Is(err, privacy.ErrBadInstallationID) {
			t.Errorf("Erase(%q): %v, want ErrBadInstallationID", id, err)
		}
	}
	if _, err := r.svc.Erase(t.Context(), newInstallationID(), "bad id!", privacy.SourceDevice); !errors.Is(err, privacy.ErrBadRequestID) {
		t.Errorf("bad request id: %v", err)
	}
}

func TestResumeFinishesAnInterruptedErasure(t *testing.T) {
	forEachStore(t, testResumeFinishesAnInterruptedErasure)
}

func testResumeFinishesAnInterruptedErasure(t *testing.T, r *rig) {
	ctx := t.Context()
	id := newInstallationID()
	r.submitDays(t, id, 3)
	// The process stopped right after the tombstone was committed.
	req := &privacy.Request{ID: "cut", IDHash: privacy.IDHash(id), Source: privacy.SourceDevice,
		Status: privacy.StatusPending, RequestedAt: r.clock.Now()}
	if existing, err := r.ps.BeginErasure(ctx, req, id); err != nil || existing != nil {
		t.Fatal(existing, err)
	}
	if st, _ := r.svc.Status(ctx, "cut"); st.Status != privacy.StatusPending {
		t.Fatalf("status = %+v", st)
	}
	if ok, _ := r.svc.Erased(ctx, id); !ok {
		t.Error("not suppressed while pending")
	}
	// The background retention job finishes it.
	job := &privacy.Retention{Store: r.ps, Manifest: r.m, Clock: r.clock, Eraser: r.svc}
	rst, err := job.RunOnce(ctx)
	if err != nil || rst.Resumed != 1 {
		t.Fatalf("resumed = %d, %v", rst.Resumed, err)
	}
	st, err := r.svc.Status(ctx, "cut")
	if err != nil || st.Status != privacy.StatusComplete || st.Removed.Events["tls_connection"] != 6 {
		t.Fatalf("status after resume = %+v, %v", st, err)
	}
	if n := countFor(r.logRecords(t), id); n != 0 {
		t.Errorf("%d records left", n)
	}
	if n, _ := r.svc.Resume(ctx); n != 0 {
		t.Errorf("second resume finished %d", n)
	}
}

func TestAuditLogIsAppendOnlyAndTamperEvident(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	for i := range 3 {
		id := newInstallationID()
		r.submitDays(t, id, i+1)
		if _, err := r.svc.Erase(ctx, id, "", privacy.SourceOperator); err != nil {
			t.Fatal(err)
		}
	}
	db := r.sq.DB()
	if _, err := db.Exec(`UPDATE privacy_audit SET removed = '{}' WHERE seq = 2`); err == nil {
		t.Error("an audit entry could be updated")
	}
	if _, err := db.Exec(`DELETE FROM privacy_audit WHERE seq = 2`); err == nil {
		t.Error("an audit entry could be deleted")
	}
	entries, err := r.ps.Audit(ctx, 0, 10)
	if err != nil || len(entries) != 3 {
		t.Fatal(len(entries), err)
	}
	for _, e := range entries {
		if e.IDHash == "" || e.Removed == nil || e.Hash == "" {
			t.Errorf("entry %+v", e)
		}
	}
	if n, err := privacy.VerifyAudit(ctx, r.ps); err != nil || n != 3 {
		t.Fatalf("verify = %d, %v", n, err)
	}
	// Someone with write access to the file removes the guard and edits
	// an entry: the chain shows it.
	if _, err := db.Exec(`DROP TRIGGER privacy_audit_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE privacy_audit SET removed = '{"events":{},"categories":{},"records":{}}' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := privacy.VerifyAudit(ctx, r.ps); err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Errorf("verify after tampering: %v", err)
	}
}

// TestEraseOnEveryStore: on each store, erasure empties the log of the
// installation, and a batch that arrives afterwards is refused by the
// store itself.
func TestEraseOnEveryStore(t *testing.T) { forEachStore(t, testEraseOnEveryStore) }

func testEraseOnEveryStore(t *testing.T, r *rig) {
	ctx := t.Context()
	gone, kept := newInstallationID(), newInstallationID()
	r.submitDays(t, gone, 3)
	r.submitDays(t, kept, 2)
	rec, err := r.svc.Erase(ctx, gone, "every-store", privacy.SourceDevice)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Removed.Events["tls_connection"] != 6 || rec.Removed.Events["software"] != 3 {
		t.Errorf("receipt %v", rec.Removed.Events)
	}
	r.appendBatch(t, gone, provision.RegionEU, softwareEvent(r.clock.Now()))
	recs := r.logRecords(t)
	if n := countFor(recs, gone); n != 0 {
		t.Errorf("log replay: %d records of the erased installation", n)
	}
	if n := countFor(recs, kept); n != 6 {
		t.Errorf("log replay: %d records of the other installation, want 6", n)
	}
	if x, err := r.svc.Export(ctx, gone); err != nil || !x.Erased || len(x.Items) != 0 {
		t.Errorf("export: %+v %v", x, err)
	}
	if n, err := privacy.VerifyAudit(ctx, r.ps); err != nil || n != 1 {
		t.Errorf("audit %d %v", n, err)
	}
}
