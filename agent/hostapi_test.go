package agent

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestStateDirBusy: while one agent holds a state directory another Open
// waits for the file lock (30 s) and then says the directory is busy, with
// an error callers can test for.
func TestStateDirBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 30 s for the lock")
	}
	t.Parallel()
	dir := t.TempDir()
	openAgent(t, dir)
	start := time.Now()
	a, err := Open(Config{StateDir: dir})
	if err == nil {
		a.Close()
		t.Fatal("a second agent opened a state directory in use")
	}
	if !errors.Is(err, ErrStateDirBusy) {
		t.Fatalf("second open: %v, want ErrStateDirBusy", err)
	}
	t.Logf("refused after %s: %v", time.Since(start).Round(time.Second), err)
}

func TestRegionsAreTheTerms(t *testing.T) {
	a := openAgent(t, t.TempDir())
	regions := a.Regions()
	if !slices.Equal(regions, []string{"eu", "uk", "br", "us-ca"}) {
		t.Fatalf("regions %v", regions)
	}
	regions[0] = "mars" // a copy: the caller cannot change the agent's terms
	if _, err := a.Accept("eu"); err != nil {
		t.Fatal(err)
	}
}

func TestUploadCheck(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Upload{
		{},
		{Server: "http://telemetry.example.com"},
		{Server: "https://"},
		{Server: "https://telemetry.example.com", Encoding: "brotli"},
		{Server: "https://telemetry.example.com", Pin: "abc"},
		{Server: "https://telemetry.example.com", CAFile: ca},
		{Server: "https://telemetry.example.com", CAFile: ca + ".missing"},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("%+v passed the check", bad)
		}
	}
	if err := (Upload{Server: "https://telemetry.example.com:8443", Encoding: "zstd"}).Check(); err != nil {
		t.Fatal(err)
	}
}
