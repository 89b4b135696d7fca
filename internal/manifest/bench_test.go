package manifest_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
)

// typicalEvents are what a day of one installation mostly holds, with values
// as the server's JSON decoder produces them.
func typicalEvents() []provision.Event {
	now := time.Now()
	return []provision.Event{
		softwareEvent(),
		{ID: "e2", Type: "os", Time: now, Fields: map[string]any{
			"os.type": "windows", "os.version": "11 23H2", "os.edition": "Professional",
			"os.update_packages": []any{"KB5044284", "KB5043080", "KB5042099"},
		}},
		{ID: "e3", Type: "task", Time: now, Fields: map[string]any{
			"task.type": "upgrade", "task.status": "success", "task.duration": json.Number("93000"),
			"software.version": "5.14.0.1234", "os.type": "windows",
		}},
		{ID: "e4", Type: "ui_error", Time: now, Fields: map[string]any{
			"error.type": "connection_failed", "error.code": "0x80072EFD", "ui.control_id": "btnConnect", "event.count": json.Number("3"),
		}},
		{ID: "e6", Type: "task", Time: now, Fields: map[string]any{
			"task.type": "install", "task.status": "failure", "task.duration": json.Number("41000"),
			"task.error_type": "prerequisite_missing", "task.error_code": "0x80070666", "task.campaign_id": "spring-2026",
		}},
		{ID: "e5", Type: "user_count", Time: now, Fields: map[string]any{
			"software.name": "Secure Connection", "software.version": "5.14.0.1234", "os.version": "11 23H2",
		}},
	}
}

// BenchmarkCheckEvent measures validation of typical events with the
// search for personal data (check=on) and without it (check=off), the pair
// whose ratio is the cost of the search; the target is at least 1,000,000
// events per second per core, no allocation, and the search costing at
// most 20% of validation time.
func BenchmarkCheckEvent(b *testing.B) {
	events := typicalEvents()
	for _, bc := range []struct {
		name string
		m    *manifest.Manifest
	}{
		{"check=on", reference},
		{"check=off", reference.WithoutPersonalDataChecks()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := range events {
				if vs := bc.m.CheckEvent(nil, 0, &events[i], "eu"); len(vs) > 0 {
					b.Fatalf("typical event invalid: %v", vs)
				}
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				for i := range events {
					if vs := bc.m.CheckEvent(nil, i, &events[i], "eu"); len(vs) > 0 {
						b.Fatal(vs)
					}
				}
				n += len(events)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkFindPersonal measures the search alone on a value at the longest
// a free-text item allows, with nothing to find: the worst ordinary case.
func BenchmarkFindPersonal(b *testing.B) {
	s := strings.Repeat("connection_failed 0x80072EFD tray.menu_0 5.14.0.1234 ", 8)[:128]
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if manifest.FindPersonal(s, manifest.CheckAll) != 0 {
			b.Fatal("found personal data in", s)
		}
	}
}

func TestCheckEventAllocatesNothing(t *testing.T) {
	events := typicalEvents()
	allocs := testing.AllocsPerRun(100, func() {
		for i := range events {
			if vs := reference.CheckEvent(nil, i, &events[i], "eu"); len(vs) > 0 {
				t.Fatal(vs)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("validating valid events allocates %.1f times", allocs)
	}
}
