package rollup

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/provisionhq/provision"
)

// Ingest keeps numbers as json.Number and every store gives them back so:
// task durations and event counts in that form must reach the rollups.
func TestNumbersAsIngestKeepsThem(t *testing.T) {
	for _, d := range []any{json.Number("1234"), float64(1234), int64(1234)} {
		a := newAggregator([]byte("k"), 0)
		now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
		a.add(&provision.Record{Seq: 1, InstallationID: "i", ReceivedAt: now, Event: provision.Event{ID: "e", Type: "task", Time: now,
			Fields: map[string]any{"task.type": "install", "task.status": "success", "task.duration": d}}})
		found := false
		for _, c := range a.cells {
			if c.View == ViewTask {
				found = true
				if c.Durations == nil || c.Durations.IsEmpty() {
					t.Errorf("%T duration not recorded in %s", d, c.Key)
				}
			}
		}
		if !found {
			t.Fatalf("%T: no task cell", d)
		}
	}
	a := newAggregator([]byte("k"), 10)
	for _, tc := range []struct {
		count any
		want  int64
	}{{json.Number("5"), 5}, {json.Number("50"), 10}, {json.Number("1.5"), 1}, {"5", 1}, {nil, 1}} {
		if got := a.capWeight(fieldMap{"event.count": tc.count}); got != tc.want {
			t.Errorf("event.count %#v: weight %d, want %d", tc.count, got, tc.want)
		}
	}
}
