package manifest_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/provisionhq/provision"
)

// typicalEvents are what a day of one installation mostly holds, with values
// as the server's JSON decoder produces them.
func typicalEvents() []provision.Event {
	now := time.Now()
	return []provision.Event{
		softwareEvent(),
		{ID: "e2", Type: "os", Time: now, Fields: map[string]any{
			"os.type": "windows", "os.version": "11 23H2", "os.edition": "Professional", "os.build": "22631.4460",
			"os.architecture": "amd64", "os.update_packages": []any{"KB5044284", "KB5043080", "KB5042099"},
		}},
		{ID: "e3", Type: "task", Time: now, Fields: map[string]any{
			"task.type": "upgrade", "task.status": "success", "task.duration": json.Number("93000"),
			"software.version": "5.14.0.1234", "os.type": "windows",
		}},
		{ID: "e4", Type: "ui_error", Time: now, Fields: map[string]any{
			"error.type": "connection_failed", "error.code": "0x80072EFD", "ui.control_id": "btnConnect", "event.count": json.Number("3"),
		}},
		{ID: "e5", Type: "user_count", Time: now, Fields: map[string]any{
			"software.name": "Secure Connection", "software.version": "5.14.0.1234", "os.version": "11 23H2",
		}},
	}
}

// BenchmarkCheckEvent measures validation of typical events; the target is
// at least 1,000,000 events per second per core and no allocation.
func BenchmarkCheckEvent(b *testing.B) {
	events := typicalEvents()
	for i := range events {
		if vs := reference.CheckEvent(nil, 0, &events[i], "eu"); len(vs) > 0 {
			b.Fatalf("typical event invalid: %v", vs)
		}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range events {
			if vs := reference.CheckEvent(nil, i, &events[i], "eu"); len(vs) > 0 {
				b.Fatal(vs)
			}
		}
		n += len(events)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func TestCheckEventAllocatesNothing(t *testing.T) {
	events := typicalEvents()
	allocs := testing.AllocsPerRun(100, func() {
		for i := range events {
			reference.CheckEvent(nil, i, &events[i], "eu")
		}
	})
	if allocs != 0 {
		t.Errorf("validating valid events allocates %.1f times", allocs)
	}
}
