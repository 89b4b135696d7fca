package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The one-command demo end to end with a smaller fleet: the embedded
// server, the fleet through the real agent library, the summary that
// agrees with the ground truth (exit 0 only then), the planted findings
// flagged, a progress line per simulated day (the output is no terminal),
// the HTML reports kept in the --data directory, and last lines whose
// commands work. It logs its wall and CPU time (go test -v -run
// TestDemoExit ./cmd/provision); the default fleet's are bench/demo's.
func TestDemoExit(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo simulates a fleet for some seconds")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	began, cpu := time.Now(), processCPU()
	code, out, stderr := runCmd(t, "", "demo", "--exit", "--installs", "150", "--days", "10", "--seed", "3", "--data", dir)
	t.Logf("demo --exit --installs 150 --days 10: wall %.1f s, CPU %.1f s (load average %s)",
		time.Since(began).Seconds(), (processCPU() - cpu).Seconds(), loadAverage())
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
		"\nKept " + dir + " (remove it when done). Next:\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary lacks %q:\n%s", want, out)
		}
	}
	// With --exit the server is gone by the end: no address to open.
	if strings.Contains(out, "/dashboard") || strings.Contains(out, "Ctrl-C") {
		t.Errorf("--exit printed a dashboard that is already gone:\n%s", out)
	}
	if !strings.Contains(out, "rejected: 0;") {
		t.Errorf("events were rejected:\n%s", out)
	}
	for d := 1; d <= 10; d++ {
		if !strings.Contains(stderr, fmt.Sprintf("day %d/10: ", d)) {
			t.Errorf("no progress line for day %d:\n%s", d, stderr)
		}
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
	// The last lines' command runs on the kept directory: the threat
	// report, with the stolen signer flagged (exit 1: a flag raised).
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := strings.Fields(lines[len(lines)-1])
	if len(last) < 3 || last[0] != "provision" || last[1] != "report" {
		t.Fatalf("the last line is not the report command: %q", lines[len(lines)-1])
	}
	code, rep, rerr := runCmd(t, "", last[1:]...)
	if code != exitFinding || !strings.Contains(rep, "Woodgrove Utilities Ltd") {
		t.Errorf("%v: exit %d\n%s\n%s", last, code, rep, rerr)
	}
	// No simulated client address may appear in what the demo prints.
	for _, line := range strings.Split(out+stderr, "\n") {
		if simulatedAddr.MatchString(line) {
			t.Errorf("an address-like value was printed: %q", line)
		}
	}
}

// simulatedAddr matches the fleet's client addresses, all in 10.0.0.0/8.
var simulatedAddr = regexp.MustCompile(`\b10\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)

// loadAverage is the machine's load average, for the note next to a
// measured time; "unknown" where /proc/loadavg is not.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// A --data directory that holds anything is refused before the demo
// writes or starts anything: old data would mix into the check.
func TestDemoRefusesADataDirWithData(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "provision.db"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd(t, "", "demo", "--exit", "--installs", "5", "--days", "1", "--data", dir)
	if code != exitError || !strings.Contains(stderr, "--data "+dir+" already holds data (provision.db and 0 more)") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the refused directory was written to: %v", entries)
	}
	// An empty one is taken (and kept, since it was named).
	empty := t.TempDir()
	if code, out, stderr := runCmd(t, "", "demo", "--exit", "--installs", "5", "--days", "1", "--data", empty); code != exitOK || !strings.Contains(out, "Kept "+empty) {
		t.Fatalf("an empty --data: exit %d\n%s\n%s", code, out, stderr)
	}
}

// Without --data the demo works in a temporary directory that it removes
// at the end, after an interruption too, unless --keep.
func TestDemoRemovesItsTemporaryDirectoryUnlessKept(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo four times")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	demoDirs := func() []string {
		m, _ := filepath.Glob(filepath.Join(tmp, "provision-demo-*"))
		return m
	}
	code, out, stderr := runCmd(t, "", "demo", "--exit", "--installs", "20", "--days", "2")
	if code != exitOK || len(demoDirs()) != 0 {
		t.Fatalf("exit %d, left %v\n%s\n%s", code, demoDirs(), out, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "Removed ") || !strings.Contains(last, "nothing is left to open") {
		t.Errorf("last line %q", last)
	}
	if strings.Contains(out, "quality.html") {
		t.Errorf("the output names reports that were removed:\n%s", out)
	}

	// Interrupted (Ctrl-C) during the simulation: removed as well.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var so lockedBuffer
	se := &cancelOn{after: "day 1/3: ", cancel: cancel}
	code = run(ctx, []string{"demo", "--exit", "--installs", "20", "--days", "3"}, func(string) string { return "" }, strings.NewReader(""), &so, se)
	if code != exitError || len(demoDirs()) != 0 || !strings.Contains(so.String(), "\nRemoved ") {
		t.Fatalf("interrupted: exit %d, left %v\n%s\n%s", code, demoDirs(), so.String(), se.String())
	}

	// The dashboard until Ctrl-C: its address while it runs, then the
	// directory removed and no address any more.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	dash := &cancelOn{after: "Press Ctrl-C to stop.", cancel: cancel}
	code = run(ctx, []string{"demo", "--installs", "20", "--days", "2"}, func(string) string { return "" }, strings.NewReader(""), dash, io.Discard)
	before, after, _ := strings.Cut(dash.String(), "Press Ctrl-C to stop.")
	if code != exitOK || len(demoDirs()) != 0 || !strings.Contains(before, "/dashboard (operator token ") ||
		!strings.HasPrefix(strings.TrimSpace(after), "Removed ") || strings.Contains(after, "https://") {
		t.Fatalf("dashboard stopped: exit %d, left %v\n%s", code, demoDirs(), dash.String())
	}

	code, out, stderr = runCmd(t, "", "demo", "--exit", "--keep", "--installs", "20", "--days", "2")
	kept := demoDirs()
	if code != exitOK || len(kept) != 1 || !strings.Contains(out, "\nKept "+kept[0]) {
		t.Fatalf("--keep: exit %d, dirs %v\n%s\n%s", code, kept, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(kept[0], "quality.html")); err != nil {
		t.Errorf("--keep lost the report: %v", err)
	}
}

// cancelOn is an output that cancels once it has seen a string.
type cancelOn struct {
	lockedBuffer
	after  string
	cancel func()
}

func (c *cancelOn) Write(p []byte) (int, error) {
	n, err := c.lockedBuffer.Write(p)
	if strings.Contains(c.String(), c.after) {
		c.cancel()
	}
	return n, err
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
