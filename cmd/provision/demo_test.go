package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The one-command demo end to end with a smaller fleet: the embedded
// server, the fleet through the real agent library, the summary that
// agrees with the ground truth (exit 0 only then), the planted findings
// flagged, and the HTML reports written.
func TestDemoExit(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo simulates a fleet for some seconds")
	}
	dir := t.TempDir()
	code, out, stderr := runCmd(t, "", "demo", "--exit", "--installs", "150", "--days", "10", "--seed", "3", "--data", dir)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	for _, want := range []string{
		"Installations counted: 150 over the period (ground truth 150)",
		"daily active installations match on all 10 days",
		"failing_campaign upd-5.14-wave1",
		// At this size the interception root's early days stay below the
		// publication threshold, so its growth cannot be published; the
		// demo must say so rather than claim it (the full-size demo and
		// the report tests show the flag).
		"interception root \"Secure Web Filter Root CA\" not flagged as spreading",
		"signer_sudden CN=Woodgrove Utilities Ltd",
		"/dashboard (operator token ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "rejected: 0;") {
		t.Errorf("events were rejected:\n%s", out)
	}
	for _, name := range []string{"quality.html", "threats.html"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "<svg") {
			t.Errorf("%s has no chart", name)
		}
	}
	// No simulated client address may appear in what the demo prints.
	for _, line := range strings.Split(out+stderr, "\n") {
		if strings.Contains(line, " 10.") {
			t.Errorf("an address-like value was printed: %q", line)
		}
	}
}

func TestSimulateNeedsServer(t *testing.T) {
	if code, _, stderr := runCmd(t, "", "simulate", "--installs", "5"); code != exitError || !strings.Contains(stderr, "--server") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	dir := t.TempDir()
	geo := filepath.Join(dir, "fleet.mmdb")
	if code, _, stderr := runCmd(t, "", "simulate", "--write-geoip", geo); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if st, err := os.Stat(geo); err != nil || st.Size() == 0 {
		t.Errorf("no GeoIP database written: %v", err)
	}
}
