package main

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFootprintHost runs the C footprint host of bench/cabi on a few calls:
// it loads the library with dlopen, opens an agent and times the calls, so
// CI keeps the harness working. The figures are logged, not judged; `go
// run ./bench/cabi` measures them properly.
func TestFootprintHost(t *testing.T) {
	needHostTools(t)
	bin := compile(t, "gcc", "bench-host", "-std=c11", "../bench/cabi/host/host.c", "-lpthread", "-ldl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := run(t, ctx, bin, sharedLibrary(t), filepath.Join(t.TempDir(), "state"), "5", "2")
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
	for _, k := range []string{"rss_before_dlopen", "rss_after_dlopen", "rss_after_open", "rss_after_calls",
		"abi_version", "status", "record_error_sequential", "record_error_2_threads"} {
		if got[k] <= 0 {
			t.Errorf("%s: %v", k, got[k])
		}
	}
	if got["rss_after_dlopen"] <= got["rss_before_dlopen"] {
		t.Errorf("loading the library did not show in VmRSS: %v -> %v kB", got["rss_before_dlopen"], got["rss_after_dlopen"])
	}
}
