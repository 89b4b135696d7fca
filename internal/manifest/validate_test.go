package manifest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
)

var reference = manifest.Reference()

func testCertB64(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "example.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func softwareEvent() provision.Event {
	return provision.Event{
		ID:   "3f2a9c1e8b7d4e6f",
		Type: "software",
		Time: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC),
		Fields: map[string]any{
			"software.type":         "vpn",
			"software.name":         "Secure Connection",
			"software.version":      "5.14.0.1234",
			"software.edition":      "premium",
			"software.localization": "en-GB",
		},
	}
}

func TestValidEvents(t *testing.T) {
	cert := testCertB64(t)
	events := []provision.Event{
		softwareEvent(),
		{ID: "e2", Type: "os", Time: time.Now(), Fields: map[string]any{
			"os.type": "linux", "os.version": "12 (bookworm)",
			"os.update_packages": []any{"openssl 3.0.15-1~deb12u1", "libc6 2.36-9"},
		}},
		{ID: "e3", Type: "task", Time: time.Now(), Fields: map[string]any{
			"task.type": "upgrade", "task.status": "failure", "task.duration": json.Number("93000"),
			"task.error_code": "1603", "task.campaign_id": "spring-2026",
		}},
		{ID: "e4", Type: "license", Time: time.Now(), Fields: map[string]any{"license.provider_site": "https://shop.example.com"}},
		{ID: "e5", Type: "tls_connection", Time: time.Now(), Fields: map[string]any{
			"tls.certificate": cert, "tls.spki_sha256": strings.Repeat("ab", 32), "event.count": float64(17),
		}},
		{ID: "e6", Type: "ui_error", Time: time.Now(), Fields: map[string]any{
			"error.type": "connection_failed", "error.code": "0x80072EFD", "ui.control_id": "btnConnect", "event.count": 3,
		}},
	}
	for _, ev := range events {
		if v := reference.CheckEvent(nil, 0, &ev, "eu"); len(v) > 0 {
			t.Errorf("%s event rejected: %v", ev.Type, v)
		}
	}
}

func TestViolationCodes(t *testing.T) {
	cert := testCertB64(t)
	tests := []struct {
		name   string
		region string
		edit   func(ev *provision.Event)
		path   string
		code   manifest.Code
	}{
		{"undeclared field", "eu", func(ev *provision.Event) { ev.Fields["user.email"] = "a@b.c" }, "fields.user.email", manifest.CodeUndeclaredField},
		{"field of another event type", "eu", func(ev *provision.Event) { ev.Fields["os.type"] = "linux" }, "fields.os.type", manifest.CodeUndeclaredField},
		{"location outside task events", "eu", func(ev *provision.Event) { ev.Fields["location.country"] = "DE" }, "fields.location.country", manifest.CodeUndeclaredField},
		{"missing required field", "eu", func(ev *provision.Event) { delete(ev.Fields, "software.name") }, "fields.software.name", manifest.CodeMissingField},
		{"wrong type", "eu", func(ev *provision.Event) { ev.Fields["software.name"] = 42.0 }, "fields.software.name", manifest.CodeWrongType},
		{"too long", "eu", func(ev *provision.Event) { ev.Fields["software.name"] = strings.Repeat("é", 65) }, "fields.software.name", manifest.CodeOutOfBounds},
		{"hostile length", "eu", func(ev *provision.Event) { ev.Fields["software.name"] = strings.Repeat("x", 1<<20) }, "fields.software.name", manifest.CodeOutOfBounds},
		{"not in enum", "eu", func(ev *provision.Event) { ev.Fields["software.type"] = "game" }, "fields.software.type", manifest.CodeOutOfBounds},
		{"invalid utf-8", "eu", func(ev *provision.Event) { ev.Fields["software.name"] = "ab\xffcd" }, "fields.software.name", manifest.CodeBadEncoding},
		{"control character", "eu", func(ev *provision.Event) { ev.Fields["software.name"] = "a\x00b" }, "fields.software.name", manifest.CodeBadEncoding},
		{"unknown region", "mars", func(ev *provision.Event) {}, "fields.software.name", manifest.CodeRegionNotDeclared},
		{"bad event id", "eu", func(ev *provision.Event) { ev.ID = "has space" }, "id", manifest.CodeBadEvent},
		{"missing time", "eu", func(ev *provision.Event) { ev.Time = time.Time{} }, "time", manifest.CodeBadEvent},
		{"unknown event type", "eu", func(ev *provision.Event) { ev.Type = "keystrokes" }, "type", manifest.CodeUnknownEventType},
		{"batch pseudo type", "eu", func(ev *provision.Event) { ev.Type = "batch" }, "type", manifest.CodeUnknownEventType},
		{"installation id inside an event", "eu", func(ev *provision.Event) {
			ev.Fields["installation.id"] = "0b7e2c4e-5a0f-4d7b-9c1e-2f3a4b5c6d7e"
		}, "fields.installation.id", manifest.CodeUndeclaredField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := softwareEvent()
			tt.edit(&ev)
			vs := reference.CheckEvent(nil, 7, &ev, tt.region)
			for _, v := range vs {
				if v.Path == tt.path && v.Code == tt.code && v.Index == 7 && v.Message != "" {
					return
				}
			}
			t.Errorf("want %s at %s, got %v", tt.code, tt.path, vs)
		})
	}

	typed := []struct {
		name string
		ev   provision.Event
		path string
		code manifest.Code
	}{
		{"integer out of range", provision.Event{Type: "ui_error", Fields: map[string]any{"event.count": 0}}, "fields.event.count", manifest.CodeOutOfBounds},
		{"fractional integer", provision.Event{Type: "ui_error", Fields: map[string]any{"event.count": 1.5}}, "fields.event.count", manifest.CodeWrongType},
		{"huge json number", provision.Event{Type: "ui_error", Fields: map[string]any{"event.count": json.Number("1e400")}}, "fields.event.count", manifest.CodeWrongType},
		{"duration too long", provision.Event{Type: "task", Fields: map[string]any{"task.duration": int64(49 * time.Hour / time.Millisecond)}}, "fields.task.duration", manifest.CodeOutOfBounds},
		{"negative duration", provision.Event{Type: "task", Fields: map[string]any{"task.duration": -1}}, "fields.task.duration", manifest.CodeOutOfBounds},
		{"digest too short", provision.Event{Type: "tls_connection", Fields: map[string]any{"tls.spki_sha256": "abcd"}}, "fields.tls.spki_sha256", manifest.CodeBadDigest},
		{"digest uppercase", provision.Event{Type: "tls_connection", Fields: map[string]any{"tls.spki_sha256": strings.Repeat("AB", 32)}}, "fields.tls.spki_sha256", manifest.CodeBadDigest},
		{"certificate not base64", provision.Event{Type: "tls_connection", Fields: map[string]any{"tls.certificate": "!!!"}}, "fields.tls.certificate", manifest.CodeBadCertificate},
		{"certificate not DER", provision.Event{Type: "tls_connection", Fields: map[string]any{"tls.certificate": base64.StdEncoding.EncodeToString([]byte("hello world, not a certificate"))}}, "fields.tls.certificate", manifest.CodeBadCertificate},
		{"certificate too large", provision.Event{Type: "tls_connection", Fields: map[string]any{"tls.certificate": base64.StdEncoding.EncodeToString(make([]byte, 20000))}}, "fields.tls.certificate", manifest.CodeOutOfBounds},
		{"bad list element", provision.Event{Type: "os", Fields: map[string]any{"os.update_packages": []any{"KB5034441", 5.0}}}, "fields.os.update_packages[1]", manifest.CodeWrongType},
		{"list too long", provision.Event{Type: "os", Fields: map[string]any{"os.update_packages": make([]any, 2001)}}, "fields.os.update_packages", manifest.CodeOutOfBounds},
		{"list wrong type", provision.Event{Type: "os", Fields: map[string]any{"os.update_packages": cert}}, "fields.os.update_packages", manifest.CodeWrongType},
		{"personal data in a list element", provision.Event{Type: "os", Fields: map[string]any{"os.update_packages": []any{"KB5034441", `C:\Users\john.doe\Downloads\patch.msu`}}}, "fields.os.update_packages[1]", manifest.CodePersonalData},
		{"url with path", provision.Event{Type: "license", Fields: map[string]any{"license.provider_site": "https://shop.example.com/account?id=42"}}, "fields.license.provider_site", manifest.CodeBadURL},
		{"url with user", provision.Event{Type: "license", Fields: map[string]any{"license.provider_site": "https://bob:pw@shop.example.com"}}, "fields.license.provider_site", manifest.CodeBadURL},
		{"url scheme", provision.Event{Type: "license", Fields: map[string]any{"license.provider_site": "ftp://shop.example.com"}}, "fields.license.provider_site", manifest.CodeBadURL},
		{"url relative", provision.Event{Type: "license", Fields: map[string]any{"license.provider_site": "shop.example.com"}}, "fields.license.provider_site", manifest.CodeBadURL},
		{"server-only field", provision.Event{Type: "task", Fields: map[string]any{"location.country": "DE"}}, "fields.location.country", manifest.CodeServerOnlyField},
		{"null value", provision.Event{Type: "license", Fields: map[string]any{"license.provider_site": nil}}, "fields.license.provider_site", manifest.CodeWrongType},
		{"object value", provision.Event{Type: "license", Fields: map[string]any{"license.provider_site": map[string]any{}}}, "fields.license.provider_site", manifest.CodeWrongType},
	}
	for _, tt := range typed {
		t.Run(tt.name, func(t *testing.T) {
			tt.ev.ID, tt.ev.Time = "x1", time.Now()
			vs := reference.CheckEvent(nil, 0, &tt.ev, "eu")
			for _, v := range vs {
				if v.Path == tt.path && v.Code == tt.code {
					return
				}
			}
			t.Errorf("want %s at %s, got %v", tt.code, tt.path, vs)
		})
	}
}

func TestRegionAndRecipient(t *testing.T) {
	// A custom manifest where the edition is declared for the EU only and
	// the localization goes to Google Analytics as well.
	data := mutate(t, "    type: {kind: string, max_length: 32}\n    category: software\n    purposes: [software_quality]\n    recipients: [vendor]\n    regions: [eu, uk, br, us-ca]\n",
		"    type: {kind: string, max_length: 32}\n    category: software\n    purposes: [software_quality]\n    recipients: [vendor]\n    regions: [eu]\n")
	m, err := manifest.Parse("custom.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	ev := softwareEvent()
	if vs := m.CheckEvent(nil, 0, &ev, "eu"); len(vs) != 0 {
		t.Fatalf("eu: %v", vs)
	}
	vs := m.CheckEvent(nil, 0, &ev, "br")
	if len(vs) != 1 || vs[0].Code != manifest.CodeRegionNotDeclared || vs[0].Path != "fields.software.edition" {
		t.Fatalf("br: want region_not_declared for the edition, got %v", vs)
	}

	fields := map[string]any{"software.name": "x", "software.edition": "free"}
	vs = reference.CheckRecipient(nil, 0, fields, "google_analytics")
	if len(vs) != 1 || vs[0].Code != manifest.CodeRecipientNotDeclared || vs[0].Path != "fields.software.edition" {
		t.Fatalf("recipient check: %v", vs)
	}
	if vs := reference.CheckRecipient(nil, 0, fields, "vendor"); len(vs) != 0 {
		t.Fatalf("vendor may receive everything: %v", vs)
	}
	var ids []string
	for _, it := range reference.ItemsFor("user_count", "google_analytics", "eu") {
		ids = append(ids, it.ID)
	}
	if got := strings.Join(ids, ","); got != "software.name,software.version,os.version,os.update_packages" {
		t.Errorf("google_analytics user_count fields = %s", got)
	}
}

func TestCheckBatch(t *testing.T) {
	b := provision.Batch{
		ID: "b1", InstallationID: "0b7e2c4e-5a0f-4d7b-9c1e-2f3a4b5c6d7e", Region: "uk",
		ManifestVersion: reference.Version, SentAt: time.Now(),
		Events: []provision.Event{softwareEvent(), {ID: "e2", Type: "nope", Time: time.Now()}},
	}
	vs := reference.CheckBatch(&b)
	if len(vs) != 1 || vs[0].Index != 1 || vs[0].Code != manifest.CodeUnknownEventType {
		t.Fatalf("got %v", vs)
	}
	for name, edit := range map[string]func(*provision.Batch){
		"bad installation id": func(b *provision.Batch) { b.InstallationID = "not-a-uuid" },
		"uuid not random":     func(b *provision.Batch) { b.InstallationID = "0b7e2c4e-5a0f-1d7b-9c1e-2f3a4b5c6d7e" },
		"unknown region":      func(b *provision.Batch) { b.Region = "xx" },
		"missing batch id":    func(b *provision.Batch) { b.ID = "" },
		"missing sent_at":     func(b *provision.Batch) { b.SentAt = time.Time{} },
	} {
		bb := b
		edit(&bb)
		vs := reference.CheckBatch(&bb)
		if len(vs) == 0 || vs[0].Index != -1 {
			t.Errorf("%s: want an envelope violation, got %v", name, vs)
		}
	}
}
