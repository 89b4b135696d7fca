package chaos

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/sim"
	"github.com/provisionhq/provision/internal/sqlite"
)

// buildProvision builds the provision binary for the server child process.
func buildProvision(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(t.TempDir(), "provision")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/provision")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func openSQLiteLog(ctx context.Context, dataDir string) (provision.Log, io.Closer, error) {
	s, err := sqlite.Open(ctx, filepath.Join(dataDir, "provision.db"))
	if err != nil {
		return nil, nil, err
	}
	return s, s, nil
}

// The chaos test: a fleet uploading through the real agent library while
// the server is killed with SIGKILL and restarted several times and the
// network refuses connections for a while. Afterwards every event the
// agents saw confirmed is stored exactly once, nothing unconfirmed is
// stored, the daily user counts and the countries equal the ground truth,
// and the reports built from the log show the truth and the planted
// findings.
func TestChaosKillRestartRefuse(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos test runs a server child process for a minute or more")
	}
	bin := buildProvision(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var serverLog strings.Builder
	rep, err := Run(ctx, Options{
		Binary:  bin,
		DataDir: filepath.Join(dir, "server"),
		Fleet: sim.Config{Installs: 250, Days: 12, Seed: 99,
			Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)},
		Workers:   16,
		Kills:     3,
		Refusals:  1,
		RefuseFor: 1500 * time.Millisecond,
		Via:       "agent",
		ServerCommand: func(dataDir, addr string) []string {
			return []string{"demo", "--server-only", "--data", dataDir, "--listen", addr}
		},
		Countries:    true,
		Reports:      true,
		OpenLog:      openSQLiteLog,
		ServerOutput: &serverLog,
		Logf:         t.Logf,
	})
	if err != nil {
		t.Logf("server output:\n%s", serverLog.String())
		t.Fatal(err)
	}
	t.Logf("%d kills, %d refusals in %s: %s", rep.Kills, rep.Refusals, rep.Elapsed.Round(time.Second), rep.Check)
	if rep.Kills != 3 || rep.Refusals != 1 {
		t.Errorf("the run ended before its chaos: %d kills, %d refusals", rep.Kills, rep.Refusals)
	}
	if !rep.Check.OK() {
		t.Errorf("after the chaos: %s", rep.Check)
	}
	if rep.Check.Delivered == 0 {
		t.Error("nothing was delivered")
	}
	for _, p := range rep.ReportProblems {
		t.Errorf("report: %s", p)
	}
	if t.Failed() {
		s := rep.Truth.Summary()
		t.Logf("sent: %+v", s.Sent)
	}
	if _, err := os.Stat(filepath.Join(dir, "server", "provision.db")); err != nil {
		t.Error(err)
	}
}

// The same chaos against `provision serve` itself, run as a load balancer
// would run it: plain HTTP behind the simulator's TLS gateway, trusting the
// gateway's X-Forwarded-For, with the fleet's GeoIP database.
func TestChaosServeBehindGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos test runs a server child process for a minute or more")
	}
	bin := buildProvision(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var serverLog strings.Builder
	rep, err := Run(ctx, Options{
		Binary:  bin,
		DataDir: filepath.Join(t.TempDir(), "server"),
		Fleet: sim.Config{Installs: 200, Days: 12, Seed: 7,
			Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)},
		Workers: 16, Kills: 3, Refusals: 1, RefuseFor: time.Second,
		Via: "agent", Plain: true,
		ServerCommand: func(dataDir, addr string) []string {
			return []string{"serve", "--data", dataDir, "--listen", addr, "--insecure-http",
				"--trusted-proxy-header", "X-Forwarded-For", "--geoip", GeoIPFile(dataDir)}
		},
		Countries:    true,
		OpenLog:      openSQLiteLog,
		ServerOutput: &serverLog,
		Logf:         t.Logf,
	})
	if err != nil {
		t.Logf("server output:\n%s", serverLog.String())
		t.Fatal(err)
	}
	t.Logf("%d kills, %d refusals in %s: %s", rep.Kills, rep.Refusals, rep.Elapsed.Round(time.Second), rep.Check)
	if rep.Kills != 3 || rep.Refusals != 1 || !rep.Check.OK() || rep.Check.Delivered == 0 {
		t.Errorf("after the chaos: %d kills, %d refusals, %s", rep.Kills, rep.Refusals, rep.Check)
	}
}
