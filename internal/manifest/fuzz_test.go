package manifest_test

import (
	"bytes"
	"encoding/json"
	"strings"
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
		`{"id":"e","type":"tls_connection","time":"2026-11-29T10:00:00Z","fields":{"tls.certificate":"MAA=","tls.spki_sha256":"00","event.count":1}}`,
		// Personal data in free text: each must be refused.
		`{"id":"g","type":"ui_error","time":"2026-11-29T10:00:00Z","fields":{"error.type":"crash","error.code":"E1","ui.control_id":"john.doe@example.com","event.count":1}}`,
		`{"id":"h","type":"ui_error","time":"2026-11-29T10:00:00Z","fields":{"error.type":"crash","error.code":"192.168.1.20","event.count":1}}`,
		`{"id":"i","type":"task","time":"2026-11-29T10:00:00Z","fields":{"task.type":"install","task.status":"failure","task.duration":1,"task.error_type":"C:\\Users\\john.doe\\AppData"}}`,
		`{"id":"j","type":"task","time":"2026-11-29T10:00:00Z","fields":{"task.type":"install","task.status":"failure","task.duration":1,"task.error_code":"+44 20 7946 0958"}}`,
		`{"id":"k","type":"os","time":"2026-11-29T10:00:00Z","fields":{"os.type":"linux","os.version":"12","os.update_packages":["/home/alice/x","fe80::1"]}}`,
		`{"id":"l","type":"ui_error","time":"2026-11-29T10:00:00Z","fields":{"error.type":"a@b.c@d.ef::1:2:3:4:5:6:7:8/Users/x","error.code":"1 2 3 4 5 6 7 8 9 0","event.count":1}}`,
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
		for _, v := range vs {
			if v.Code != manifest.CodePersonalData {
				continue
			}
			// A refusal for personal data never repeats the value.
			for _, f := range ev.Fields {
				if s, ok := f.(string); ok && len(s) > 3 && strings.Contains(v.Message, s) {
					t.Fatalf("message %q repeats the value %q", v.Message, s)
				}
			}
		}
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

// FuzzFindPersonal: the search never panics, and its verdict does not
// depend on what follows a match (it reads left to right) — a value with a
// match keeps it when text is appended after a space.
func FuzzFindPersonal(f *testing.F) {
	for _, s := range []string{"john.doe@example.com", "10.0.0.1:443", "2001:db8::1", `C:\Users\bob\x`, "/home/alice", "4111 1111 1111 1111", "-2147467259", "5.14.0.1234", "std::bad_alloc", "@@@..::", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := manifest.FindPersonal(s, manifest.CheckAll)
		if got != 0 {
			if again := manifest.FindPersonal(s+" ok", manifest.CheckAll); again == 0 {
				t.Fatalf("%q: found %v, but not with text appended", s, got)
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
