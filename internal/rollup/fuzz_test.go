package rollup_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	provision "github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/memlog"
	"github.com/provisionhq/provision/internal/rollup"
)

// FuzzDecodeCell feeds arbitrary stored bytes to the sketch decoder: it
// must fail cleanly, never panic.
func FuzzDecodeCell(f *testing.F) {
	c := rollup.NewCell(rollup.Key{Day: "2026-10-01", View: rollup.ViewTask, Dims: "type=upgrade"})
	for i := range 50 {
		c.Installs.InsertHash(uint64(i) * 0x9e3779b97f4a7c15)
	}
	e, _ := c.Encode()
	f.Add(e.Installs, e.Durations)
	f.Add([]byte{}, []byte{0x02, 0x01})
	f.Fuzz(func(t *testing.T, inst, dur []byte) {
		cell, err := rollup.DecodeCell(rollup.Key{}, 1, 1, 0, rollup.Encoded{Installs: inst, Durations: dur})
		if err == nil {
			_ = cell.Distinct()
			_, _ = cell.Quantile(0.5)
		}
	})
}

// FuzzUpdate folds records with arbitrary field values: whatever a
// record holds, the rollup must neither panic nor lose its checkpoint.
func FuzzUpdate(f *testing.F) {
	f.Add("tls_connection", `{"tls.certificate":"MIIB","event.count":5}`)
	f.Add("task", `{"task.type":"upgrade","task.status":"failure","task.duration":-5,"task.campaign_id":"c"}`)
	f.Add("os", `{"os.update_packages":["KB1","KB1",7,null]}`)
	f.Add("file_signature", `{"file.thumbprint_sha1":"AB","file.certificate":"////","event.count":1e300}`)
	f.Fuzz(func(t *testing.T, typ, fields string) {
		var m map[string]any
		if json.Unmarshal([]byte(fields), &m) != nil {
			return
		}
		log := memlog.New()
		_, _, _ = log.Append(context.Background(), &provision.Submission{BatchID: "b", InstallationID: "i", ReceivedAt: time.Unix(0, 0),
			Events: []provision.Event{{ID: "e", Type: typ, Fields: m}}})
		store := rollup.NewMemoryStore([]byte("k"))
		st, err := (&rollup.Updater{Log: log, Store: store}).Update(context.Background())
		if err != nil || st.Through != 1 {
			t.Fatalf("update: %+v, %v", st, err)
		}
	})
}
