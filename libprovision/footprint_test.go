package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFootprintHost runs the C and the Python footprint hosts of bench/cabi
// on a few calls: each loads the library, opens an agent and times the
// calls, so CI keeps the harness working. The figures are logged, not judged; `go
// run ./bench/cabi` measures them properly.
func TestFootprintHost(t *testing.T) {
	needHostTools(t)
	bin := compile(t, "gcc", "bench-host", "-std=c11", "../bench/cabi/host/host.c", "-lpthread", "-ldl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := run(t, ctx, bin, sharedLibrary(t), filepath.Join(t.TempDir(), "state"), "5", "2")
	checkFigures(t, out, "rss_before_dlopen", "rss_after_dlopen", "rss_after_open", "rss_after_calls",
		"abi_version", "status", "record_error_sequential", "record_error_2_threads")

	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	out = run(t, ctx, python, "../bench/cabi/host/host.py", sharedLibrary(t), filepath.Join(t.TempDir(), "state"), "5")
	checkFigures(t, out, "rss_before_load", "rss_after_load", "rss_after_open", "rss_after_calls",
		"abi_version", "status", "record_error_sequential")
}

// checkFigures reads a footprint host's "name value unit" lines: each
// figure named must be there and positive, and loading the library must
// show in the resident memory.
func checkFigures(t *testing.T, out []byte, names ...string) {
	t.Helper()
	t.Logf("\n%s", out)
	got := map[string]float64{}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) == 3 {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			got[f[0]] = v
		}
	}
	for _, k := range names {
		if got[k] <= 0 {
			t.Errorf("%s: %v", k, got[k])
		}
	}
	if before, after := got[names[0]], got[names[1]]; after <= before {
		t.Errorf("loading the library did not show in VmRSS: %v -> %v kB", before, after)
	}
}
