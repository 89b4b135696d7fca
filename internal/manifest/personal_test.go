package manifest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
)

func TestFindPersonal(t *testing.T) {
	found := []struct {
		s    string
		want manifest.PersonalChecks
	}{
		{"john.doe@example.com", manifest.CheckEmail},
		{"btn_mail:alice+news@mail.example.co.uk", manifest.CheckEmail},
		{"timeout talking to 192.168.1.20", manifest.CheckIPAddress},
		{"10.0.0.1", manifest.CheckIPAddress},
		{"connect 10.0.0.1:443 refused", manifest.CheckIPAddress},
		{"host:172.16.4.9", manifest.CheckIPAddress},
		{"peer 2001:db8::1 unreachable", manifest.CheckIPAddress},
		{"[fe80::1ff:fe23:4567:890a]:80", manifest.CheckIPAddress},
		{"::ffff:10.1.2.3", manifest.CheckIPAddress},
		{`C:\Users\john.doe\AppData\Local\Temp\setup.log`, manifest.CheckUserPath},
		{`c:\users\JDoe`, manifest.CheckUserPath},
		{"/home/alice/.config/app", manifest.CheckUserPath},
		{"/Users/bob/Library", manifest.CheckUserPath},
		{`C:\Documents and Settings\mary\Desktop`, manifest.CheckUserPath},
		{"card 4111 1111 1111 1111", manifest.CheckDigitRun},
		{"4111-1111-1111-1111", manifest.CheckDigitRun},
		{"+44 20 7946 0958", manifest.CheckDigitRun},
		{"(415) 555-2671", manifest.CheckDigitRun},
		{"4155552671", manifest.CheckDigitRun},
		{"id12345678901", manifest.CheckDigitRun},
	}
	for _, tt := range found {
		if got := manifest.FindPersonal(tt.s, manifest.CheckAll); got != tt.want {
			t.Errorf("%q: found %v, want %v", tt.s, got, tt.want)
		}
	}
	clean := []string{
		"", "connection_failed", "button.connect", "tray.menu_0", "0x80072EFD", "E0C05", "1603", "-2147467259",
		"5.14.0.1234", "10.0.22631.4460", "1.2.3.4.5", "v1.2.3.4", "KB5034441", "openssl 3.0.15-1~deb12u1",
		"std::bad_alloc", "10:00:00", "spring-2026", "2026-11-29", "12 (bookworm)", "11 23H2",
		`C:\Users\Public\Desktop`, `C:\Users\%USERNAME%\AppData`, "/home/", "/usr/share/home/x", "user@localhost",
		"@mention", "x@", "https://shop.example.com", "ERR 404 at /users", "Users\\", "0.0.0.256",
	}
	for _, s := range clean {
		if got := manifest.FindPersonal(s, manifest.CheckAll); got != 0 {
			t.Errorf("%q: found %v, want nothing", s, got)
		}
	}
	// Each pattern is found only when its check is on.
	if got := manifest.FindPersonal("10.0.0.1", manifest.CheckAll&^manifest.CheckIPAddress); got != 0 {
		t.Errorf("address found with the ip check off: %v", got)
	}
}

// The examples of the issue: each was accepted and stored before.
func TestPersonalDataRefusedPerEvent(t *testing.T) {
	now := time.Now()
	events := []provision.Event{
		{ID: "a", Type: "ui_error", Time: now, Fields: map[string]any{"error.type": "crash", "error.code": "E1", "ui.control_id": "john.doe@example.com", "event.count": 1}},
		{ID: "b", Type: "ui_error", Time: now, Fields: map[string]any{"error.type": "crash", "error.code": "192.168.1.20", "event.count": 1}},
		{ID: "c", Type: "task", Time: now, Fields: map[string]any{"task.type": "install", "task.status": "failure", "task.duration": 1000, "task.error_type": `C:\Users\john.doe\AppData\Local\Temp\x.msi`}},
		{ID: "d", Type: "ui_error", Time: now, Fields: map[string]any{"error.type": "crash", "error.code": "E1", "event.count": 1}},
	}
	want := []string{"fields.ui.control_id", "fields.error.code", "fields.task.error_type", ""}
	for i := range events {
		vs := reference.CheckEvent(nil, i, &events[i], "eu")
		if want[i] == "" {
			if len(vs) != 0 {
				t.Errorf("event %d: %v", i, vs)
			}
			continue
		}
		if len(vs) != 1 || vs[0].Code != manifest.CodePersonalData || vs[0].Path != want[i] || vs[0].Index != i {
			t.Fatalf("event %d: want personal_data at %s, got %v", i, want[i], vs)
		}
		// The refusal must not repeat what it refuses.
		if v := events[i].Fields[strings.TrimPrefix(want[i], "fields.")].(string); strings.Contains(vs[0].Message, v) {
			t.Errorf("message %q repeats the value", vs[0].Message)
		}
	}
}

func TestPersonalDataCheckConfig(t *testing.T) {
	// Off for an item: the same value passes.
	data := mutate(t, "      - \"the ID of the user interface control element\"\n", "      - \"the ID of the user interface control element\"\n    personal_data_check: off\n")
	m, err := manifest.Parse("custom.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	ev := provision.Event{ID: "a", Type: "ui_error", Time: time.Now(), Fields: map[string]any{"error.type": "crash", "error.code": "E1", "ui.control_id": "john.doe@example.com", "event.count": 1}}
	if vs := m.CheckEvent(nil, 0, &ev, "eu"); len(vs) != 0 {
		t.Errorf("check off, still refused: %v", vs)
	}
	// A list of checks: only those are applied.
	data = mutate(t, "      - \"the ID of the user interface control element\"\n", "      - \"the ID of the user interface control element\"\n    personal_data_check: [ip_address]\n")
	if m, err = manifest.Parse("custom.yaml", data); err != nil {
		t.Fatal(err)
	}
	if vs := m.CheckEvent(nil, 0, &ev, "eu"); len(vs) != 0 {
		t.Errorf("email check not selected, still refused: %v", vs)
	}
	ev.Fields["ui.control_id"] = "10.1.2.3"
	if vs := m.CheckEvent(nil, 0, &ev, "eu"); len(vs) != 1 || vs[0].Code != manifest.CodePersonalData {
		t.Errorf("ip check selected, address accepted: %v", vs)
	}
}
