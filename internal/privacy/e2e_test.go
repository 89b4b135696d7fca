package privacy_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/forward/forwardtest"
	"github.com/provisionhq/provision/internal/memlog"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/sqlite"
)

// recordingSender is a forward.Sender that keeps what it was given.
type recordingSender struct {
	mu     sync.Mutex
	counts []forward.Count
}

func (s *recordingSender) Recipient() string { return provision.RecipientGoogleAnalytics }

func (s *recordingSender) Send(_ context.Context, c *forward.Count) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = append(s.counts, *c)
	return nil
}

func (s *recordingSender) sentFor(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		if c.InstallationID == id {
			n++
		}
	}
	return n
}

func userCountEvent(at time.Time) provision.Event {
	return provision.Event{ID: nextID("uc"), Type: "user_count", Time: at, Fields: map[string]any{
		"software.name": "Secure Connection", "software.version": "5.14.0.1", "os.version": "11 23H2",
	}}
}

func maxDistinct(t *testing.T, rs rollup.Store) int64 {
	t.Helper()
	cells, err := rs.Cells(context.Background(), rollup.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var most int64
	for _, c := range cells {
		most = max(most, c.Distinct())
	}
	return most
}

// submitter sends one batch of an installation; deleter sends its
// deletion request and returns the HTTP status.
type (
	submitter func(t *testing.T, id string, events ...provision.Event)
	deleter   func(t *testing.T, id, requestID string) int
)

// TestEndToEndErasure: two agents submit for several days; one withdraws
// consent (POST /v1/deletion). Afterwards no query, export, log replay,
// forwarder or rollup rebuild returns its data, a replica of the log that
// still holds its records forwards nothing of it, late batches are not
// stored, and the receipt lists what was removed. Here batches go straight
// to the store's log; TestEndToEndErasureThroughIngest sends them through
// the ingest server.
func TestEndToEndErasure(t *testing.T) {
	r := newRig(t)
	submit := func(t *testing.T, id string, events ...provision.Event) {
		t.Helper()
		for i := range events {
			if vs := r.m.CheckEvent(nil, i, &events[i], provision.RegionEU); len(vs) > 0 {
				t.Fatalf("test event not valid: %v", vs)
			}
		}
		r.appendBatch(t, id, provision.RegionEU, events...)
	}
	del := func(t *testing.T, id, requestID string) int {
		w := post(t, privacy.NewDeletionHandler(r.svc), "/v1/deletion", `{"installation_id":"`+id+`","request_id":"`+requestID+`"}`)
		return w.Code
	}
	runEndToEnd(t, r, submit, del)
}

func runEndToEnd(t *testing.T, r *rig, submit submitter, del deleter) {
	ctx := t.Context()
	gone, kept := newInstallationID(), newInstallationID()
	replica := memlog.New() // a second copy of the log, as a stream would hold it
	const days = 4
	for range days {
		at := r.clock.Now()
		for _, id := range []string{gone, kept} {
			evs := []provision.Event{asSent(userCountEvent(at)), asSent(softwareEvent(at)), asSent(tlsEvent(at))}
			submit(t, id, evs...)
			if _, _, err := replica.Append(ctx, &provision.Submission{BatchID: nextID("rb"), InstallationID: id,
				Region: provision.RegionEU, ReceivedAt: at, Events: evs}); err != nil {
				t.Fatal(err)
			}
		}
		r.clock.Advance(day)
	}

	rs := sqlite.NewRollupStore(r.sq.DB())
	up := &rollup.Updater{Log: r.log, Store: rs}
	if _, err := up.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if got := maxDistinct(t, rs); got != 2 {
		t.Fatalf("before erasure the rollups count %d installations, want 2", got)
	}
	x, err := r.svc.Export(ctx, gone)
	if err != nil || len(x.Items) == 0 {
		t.Fatalf("export before erasure: %v, %d items", err, len(x.Items))
	}

	// The agent withdraws consent.
	if code := del(t, gone, "withdraw-e2e"); code != http.StatusAccepted {
		t.Fatalf("deletion: status %d", code)
	}
	rec, err := r.svc.Status(ctx, "withdraw-e2e")
	if err != nil || rec.Status != privacy.StatusComplete {
		t.Fatalf("status: %+v %v", rec, err)
	}
	for typ, n := range map[string]int64{"user_count": days, "software": days, "tls_connection": days} {
		if rec.Removed.Events[typ] != n {
			t.Errorf("receipt: %s removed %d, want %d (%v)", typ, rec.Removed.Events[typ], n, rec.Removed.Events)
		}
	}
	if rec.Removed.Categories["secure_connections"] != 2*days || rec.Removed.Categories["installation"] != 3*days ||
		rec.Removed.Categories["software"] != 5*days {
		t.Errorf("receipt categories %v", rec.Removed.Categories)
	}

	// A batch still in the agent's outbox arrives after the erasure.
	submit(t, gone, asSent(userCountEvent(r.clock.Now())))

	// Query: the raw store holds nothing of it.
	var n int
	if err := r.sq.DB().QueryRowContext(ctx, `SELECT (SELECT count(*) FROM log_batches WHERE installation_id = ?1) + (SELECT count(*) FROM batch_keys WHERE installation_id = ?1)`, gone).Scan(&n); err != nil || n != 0 {
		t.Errorf("query: %d rows (%v)", n, err)
	}
	// Export: nothing but the fact of the erasure.
	if x, err := r.svc.Export(ctx, gone); err != nil || len(x.Items) != 0 || !x.Erased {
		t.Errorf("export after erasure: %+v %v", x, err)
	}
	// Log replay from 0.
	recs := r.logRecords(t)
	if c := countFor(recs, gone); c != 0 {
		t.Errorf("log replay: %d records of the erased installation", c)
	}
	if c := countFor(recs, kept); c != 3*days {
		t.Errorf("log replay: %d records of the other installation, want %d", c, 3*days)
	}
	// Forwarders: one on the store's log, one on a replica that still
	// holds the erased records; neither sends anything of it.
	for name, lg := range map[string]interface {
		provision.Log
		provision.Checkpoints
	}{"store": r.log, "replica": replica} {
		sender := &recordingSender{}
		f, err := forward.New(forward.Options{Manifest: r.m, Log: lg, Checkpoints: lg,
			State: forwardtest.NewState(), Suppressor: r.svc, Sender: sender, Now: r.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		for {
			n, err := f.Step(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		if got := sender.sentFor(gone); got != 0 {
			t.Errorf("forwarder on the %s: %d counts of the erased installation", name, got)
		}
		if got := sender.sentFor(kept); got == 0 {
			t.Errorf("forwarder on the %s sent nothing of the other installation", name)
		}
	}
	// Rollup rebuild: the sketches no longer hold the erased installation.
	if _, err := up.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if got := maxDistinct(t, rs); got != 1 {
		t.Errorf("after erasure and rebuild the rollups count %d installations, want 1", got)
	}
	if _, err := privacy.VerifyAudit(ctx, r.ps); err != nil {
		t.Error(err)
	}
}
