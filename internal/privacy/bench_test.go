package privacy_test

import (
	"context"
	"testing"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/privacy"
)

// BenchmarkErased is the check a forwarder makes for every record.
func BenchmarkErased(b *testing.B) {
	r := newRig(b)
	ctx := context.Background()
	for range 100 {
		if _, err := r.svc.Erase(ctx, newInstallationID(), "", privacy.SourceOperator); err != nil {
			b.Fatal(err)
		}
	}
	id := newInstallationID()
	for b.Loop() {
		if ok, err := r.svc.Erased(ctx, id); err != nil || ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkAppendWithTombstones measures ingest's append of a 20-event
// batch with 1000 tombstones in place: the trigger that refuses erased
// installations runs for every event.
func BenchmarkAppendWithTombstones(b *testing.B) {
	r := newRig(b)
	ctx := context.Background()
	for range 1000 {
		if _, err := r.svc.Erase(ctx, newInstallationID(), "", privacy.SourceOperator); err != nil {
			b.Fatal(err)
		}
	}
	id := newInstallationID()
	for b.Loop() {
		evs := make([]provision.Event, 20)
		for i := range evs {
			evs[i] = tlsEvent(r.clock.Now())
		}
		r.appendBatch(b, id, provision.RegionEU, evs...)
	}
}

// BenchmarkErase erases an installation holding 200 events.
func BenchmarkErase(b *testing.B) {
	r := newRig(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		id := newInstallationID()
		for range 10 {
			evs := make([]provision.Event, 20)
			for i := range evs {
				evs[i] = tlsEvent(r.clock.Now())
			}
			r.appendBatch(b, id, provision.RegionEU, evs...)
		}
		b.StartTimer()
		if _, err := r.svc.Erase(ctx, id, "", privacy.SourceOperator); err != nil {
			b.Fatal(err)
		}
	}
}
