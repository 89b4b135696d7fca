package manifest_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
)

// FuzzCheckEvent feeds arbitrary JSON to the validator: it must never panic,
// and whatever it accepts must hold only declared fields within bounds.
func FuzzCheckEvent(f *testing.F) {
	seeds := []string{
		`{"id":"a","type":"software","time":"2026-11-29T10:00:00Z","fields":{"software.type":"vpn","software.name":"x","software.version":"1"}}`,
		`{"id":"b","type":"os","time":"2026-11-29T10:00:00Z","fields":{"os.type":"linux","os.version":"12","os.update_packages":["a","b"]}}`,
		`{"id":"c","type":"task","time":"2026-11-29T10:00:00Z","fields":{"task.type":"install","task.status":"success","task.duration":1e3}}`,
		`{"id":"d","type":"license","time":"2026-11-29T10:00:00Z","fields":{"license.provider_site":"https://a.example"}}`,
		`{"id":"e","type":"tls_connection","time":"2026-11-29T10:00:00Z","fields":{"tls.certificate":"MAA=","tls.spki_sha256":"00","event.count":1,"tls.chain":[[]]}}`,
		`{"id":"f","type":"ui_error","time":"2026-11-29T10:00:00Z","fields":{"error.type":"\u0000","error.code":"\ud800","ui.control_id":{},"event.count":-1}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "eu")
	}
	f.Fuzz(func(t *testing.T, data []byte, region string) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var ev provision.Event
		if dec.Decode(&ev) != nil {
			return
		}
		vs := reference.CheckEvent(nil, 0, &ev, region)
		if len(vs) > 0 {
			return
		}
		for id := range ev.Fields {
			it := reference.Item(id)
			if it == nil || !reference.InEvent(it, ev.Type) || !it.ForRegion(region) || it.Source != manifest.SourceDevice {
				t.Fatalf("accepted field %q of event type %q in region %q", id, ev.Type, region)
			}
		}
	})
}

// FuzzParse feeds arbitrary manifests to the loader: errors, never panics.
func FuzzParse(f *testing.F) {
	f.Add(manifest.ReferenceYAML())
	f.Add([]byte("version: 1\nitems: [{id: a, type: {kind: list, of: {kind: list}}}]"))
	f.Add([]byte("a: &a [*a, *a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := manifest.Parse("fuzz.yaml", data)
		if err == nil && m.Version == "" {
			t.Fatal("manifest without version accepted")
		}
	})
}
