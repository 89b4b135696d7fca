package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runCmd runs one command line in-process and returns its exit code and output.
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestHelpOnEveryCommand(t *testing.T) {
	root := newRootCmd(&env{getenv: func(string) string { return "" }})
	for _, c := range root.Commands() {
		args := []string{c.Name(), "--help"}
		code, out, _ := runCmd(t, "", args...)
		if code != exitOK || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
		for _, sub := range c.Commands() {
			args := []string{c.Name(), sub.Name(), "--help"}
			code, out, _ := runCmd(t, "", args...)
			if code != exitOK || !strings.Contains(out, "Usage:") {
				t.Errorf("%v: exit %d", args, code)
			}
		}
	}
}

func TestBadUsageExitsTwo(t *testing.T) {
	for _, args := range [][]string{{"no-such-command"}, {"manifest", "show", "--format", "pdf"}, {"manifest", "check"}, {"manifest", "show", "--no-such-flag"}} {
		if code, _, stderr := runCmd(t, "", args...); code != exitError || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 with a message", args, code, stderr)
		}
	}
}

func TestManifestShow(t *testing.T) {
	code, out, _ := runCmd(t, "", "manifest", "show", "--format", "json")
	if code != exitOK || !strings.Contains(out, `"installation.id"`) || !strings.Contains(out, `"retention_days"`) {
		t.Fatalf("exit %d, output %.200q", code, out)
	}
	code, out, _ = runCmd(t, "", "manifest", "show")
	if code != exitOK || strings.Count(out, "## Who is responsible") != 4 {
		t.Fatalf("markdown: exit %d; want every region's notice", code)
	}
	code, out, _ = runCmd(t, "", "manifest", "show", "--region", "us-ca", "--format", "html")
	if code != exitOK || !strings.HasPrefix(out, "<!DOCTYPE html>") || !strings.Contains(out, "does not sell personal information") {
		t.Fatalf("html us-ca: exit %d, output %.200q", code, out)
	}
	if code, _, stderr := runCmd(t, "", "manifest", "show", "--region", "xx"); code == exitOK || stderr == "" {
		t.Errorf("unknown region: exit %d, stderr %q", code, stderr)
	}
}

func TestManifestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	data, err := os.ReadFile("../../internal/manifest/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCmd(t, "", "manifest", "check", good); code != exitOK || !strings.Contains(out, "is valid") {
		t.Errorf("good manifest: exit %d, %q", code, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(data), "retention_days: 395", "retention_days: 395\n    colour: red", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "", "manifest", "check", bad)
	if code != exitFinding || !strings.Contains(stderr, "bad.yaml:") || !strings.Contains(stderr, "colour: unknown key") {
		t.Errorf("bad manifest: exit %d, stderr %q", code, stderr)
	}
	// --manifest replaces the embedded manifest everywhere.
	if code, _, _ := runCmd(t, "", "--manifest", bad, "manifest", "show"); code != exitError {
		t.Errorf("show with a bad --manifest: exit %d, want 2", code)
	}
}

func TestValidateEvent(t *testing.T) {
	good := `{"id":"e1","type":"license","time":"2026-11-29T10:00:00Z","fields":{"license.provider_site":"https://shop.example.com"}}`
	if code, out, _ := runCmd(t, good, "manifest", "validate-event", "-"); code != exitOK || !strings.Contains(out, "valid: 1 event") {
		t.Errorf("good event: exit %d, %q", code, out)
	}
	bad := `{"id":"e1","type":"license","time":"2026-11-29T10:00:00Z","fields":{"license.provider_site":"https://shop.example.com/x?y","user.email":"a@b"}}`
	code, out, _ := runCmd(t, bad, "manifest", "validate-event", "-")
	if code != exitFinding || !strings.Contains(out, "bad_url") || !strings.Contains(out, "undeclared_field") {
		t.Errorf("bad event: exit %d, %q", code, out)
	}
	batch := `{"batch_id":"b1","installation_id":"0b7e2c4e-5a0f-4d7b-9c1e-2f3a4b5c6d7e","region":"br","sent_at":"2026-11-29T10:00:00Z","events":[` + good + `,{"id":"e2","type":"nope","time":"2026-11-29T10:00:00Z"}]}`
	code, out, _ = runCmd(t, batch, "manifest", "validate-event", "-")
	if code != exitFinding || !strings.Contains(out, "event 1: type: unknown_event_type") {
		t.Errorf("batch: exit %d, %q", code, out)
	}
	if code, _, _ := runCmd(t, "not json", "manifest", "validate-event", "-"); code != exitError {
		t.Errorf("not json: exit %d, want 2", code)
	}
	if code, _, _ := runCmd(t, "", "manifest", "validate-event", filepath.Join(t.TempDir(), "missing.json")); code != exitError {
		t.Errorf("missing file: exit %d, want 2", code)
	}
}

// A word that is no command, or a group without one, exits 2 and names
// the commands there are.
func TestUnknownSubcommandExitsTwo(t *testing.T) {
	for _, args := range [][]string{{"privacy", "bogus"}, {"privacy"}, {"forward", "staus"}, {}} {
		code, out, stderr := runCmd(t, "", args...)
		if code != exitError || !strings.Contains(stderr, "want one of") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, stderr)
		}
	}
	if code, _, stderr := runCmd(t, "", "forward", "status", "--data", t.TempDir()); code != exitError || !strings.Contains(stderr, "no store in") {
		t.Errorf("forward status on an empty dir: exit %d %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, "", "--version")
	if code != exitOK || !regexp.MustCompile(`^provision \S+ \(commit \S+, go[0-9.]+`).MatchString(out) {
		t.Fatalf("exit %d, %q", code, out)
	}
	version, commit = "v1.2.3", "abc1234"
	defer func() { version, commit = "", "" }()
	if _, out, _ := runCmd(t, "", "--version"); !strings.HasPrefix(out, "provision v1.2.3 (commit abc1234,") {
		t.Fatalf("stamped: %q", out)
	}
	// report's own --version (an application version filter) is untouched.
	if code, _, stderr := runCmd(t, "", "report", "quality", "--version", "1.0", "--data", t.TempDir()); code != exitError || !strings.Contains(stderr, "no store in") {
		t.Errorf("report --version: exit %d %q", code, stderr)
	}
}

func TestValidateEventRefusesUnknownRegion(t *testing.T) {
	code, _, stderr := runCmd(t, `{}`, "manifest", "validate-event", "--region", "xx", "-")
	if code != exitError || !strings.Contains(stderr, "eu, uk, br, us-ca") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
}
