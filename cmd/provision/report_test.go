package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
	"github.com/provisionhq/provision/internal/sqlite"
)

// fleetData writes a generated fleet into an embedded store in a data dir.
func fleetData(t *testing.T) (string, *rolluptest.Fleet) {
	t.Helper()
	f, err := rolluptest.NewFleet(rolluptest.FleetConfig{Installations: 100, Days: 21, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, backend.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Fill(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, f
}

func TestRollupAndReportCommands(t *testing.T) {
	dir, f := fleetData(t)
	roots := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(roots, f.PublicPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	period := []string{"--data", dir, "--from", "2026-10-01", "--to", "2026-10-21", "--roots", roots, "--no-update"}

	code, out, errOut := runCmd(t, "", "rollup", "update", "--data", dir, "--batch", "777")
	if code != exitOK || !strings.Contains(out, "records in") {
		t.Fatalf("rollup update: %d %q %q", code, out, errOut)
	}
	code, first, errOut := runCmd(t, "", append([]string{"report", "threats", "--format", "json"}, period...)...)
	if code != exitFinding || !strings.Contains(errOut, "flags raised") {
		t.Fatalf("report threats: exit %d, %q", code, errOut)
	}
	for _, want := range []string{`"interception_spreading"`, `"signer_sudden"`, f.Planted.InterceptionRoot} {
		if !strings.Contains(first, want) {
			t.Errorf("threat report lacks %s", want)
		}
	}
	if code, out, _ := runCmd(t, "", "rollup", "rebuild", "--data", dir); code != exitOK || !strings.Contains(out, "through log position") {
		t.Fatalf("rollup rebuild: %d %q", code, out)
	}
	if _, again, _ := runCmd(t, "", append([]string{"report", "threats", "--format", "json"}, period...)...); again != first {
		t.Fatal("the report after a rebuild differs from the one before")
	}

	html := filepath.Join(t.TempDir(), "quality.html")
	code, _, errOut = runCmd(t, "", append([]string{"report", "quality", "--format", "html", "--out", html}, period...)...)
	if code != exitFinding {
		t.Fatalf("report quality: %d %q", code, errOut)
	}
	b, err := os.ReadFile(html)
	if err != nil || !strings.Contains(string(b), "<svg") || !strings.Contains(string(b), f.Planted.FailingCampaign) {
		t.Fatalf("quality html: %v", err)
	}
	code, out, _ = runCmd(t, "", append([]string{"report", "quality", "--format", "csv"}, period...)...)
	if code != exitFinding || !strings.HasPrefix(out, "table,") {
		t.Fatalf("report quality csv: %d", code)
	}
}

func TestReportCommandErrors(t *testing.T) {
	empty := t.TempDir()
	for _, args := range [][]string{
		{"report", "sales", "--data", empty},
		{"report", "quality", "--data", empty, "--format", "pdf"},
		{"report", "quality"},
		{"report", "quality", "--data", empty},
		{"rollup", "update", "--data", empty},
		{"report", "quality", "--data", empty, "--to", "yesterday"},
	} {
		if code, _, errOut := runCmd(t, "", args...); code != exitError || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}
