package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/sqlite"
)

// seedStore makes a data directory whose store holds two days of events of
// the installation.
func seedStore(t *testing.T, id string) string {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, backend.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	for d := range 2 {
		at := now.Add(-time.Duration(d) * 24 * time.Hour)
		sub := &provision.Submission{BatchID: "b" + string(rune('0'+d)), InstallationID: id, Region: provision.RegionUK,
			ReceivedAt: at, Response: []byte(`{}`), Events: []provision.Event{{
				ID: "e" + string(rune('0'+d)), Type: "os", Time: at,
				Fields: map[string]any{"os.type": "linux", "os.version": "12 (bookworm)"},
			}}}
		if _, _, err := st.Append(context.Background(), sub); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPrivacyCommands(t *testing.T) {
	const id = "3b241101-e2bb-4255-8caf-4136c566a962"
	dir := seedStore(t, id)

	code, out, stderr := runCmd(t, "", "privacy", "export", "--installation", id, "--data", dir)
	if code != exitOK {
		t.Fatalf("export: %d %s", code, stderr)
	}
	var x privacy.Export
	if err := json.Unmarshal([]byte(out), &x); err != nil {
		t.Fatal(err)
	}
	if len(x.Submissions) != 2 || x.Submissions[0].Region != provision.RegionUK || len(x.Items) != 3 {
		t.Errorf("export = %s", out)
	}
	exportFile := filepath.Join(t.TempDir(), "x.json")
	if code, _, stderr := runCmd(t, "", "privacy", "export", "--installation", id, "--data", dir, "-o", exportFile); code != exitOK {
		t.Fatalf("export -o: %s", stderr)
	}
	if fi, err := os.Stat(exportFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file: %v %v", fi, err)
	}

	code, out, stderr = runCmd(t, "", "privacy", "erase", "--installation", id, "--data", dir, "--request-id", "ticket-42", "--rebuild-rollups")
	if code != exitOK {
		t.Fatalf("erase: %d %s", code, stderr)
	}
	var rec privacy.Request
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Status != privacy.StatusComplete || rec.Removed.Events["os"] != 2 || rec.Removed.Categories["operating_system"] != 4 {
		t.Errorf("receipt = %s", out)
	}
	if strings.Contains(out, id) {
		t.Error("the receipt shows the installation id")
	}
	if !strings.Contains(stderr, "rollups rebuilt from 0 records") {
		t.Errorf("rebuild: %q", stderr)
	}

	code, out, _ = runCmd(t, "", "privacy", "status", "ticket-42", "--data", dir)
	if code != exitOK || !strings.Contains(out, `"complete"`) {
		t.Errorf("status: %d %s", code, out)
	}
	if code, _, _ := runCmd(t, "", "privacy", "status", "unknown", "--data", dir); code != exitError {
		t.Errorf("status of an unknown request: exit %d", code)
	}

	code, out, stderr = runCmd(t, "", "privacy", "audit", "--data", dir)
	if code != exitOK || strings.Count(out, "\n") != 1 || !strings.Contains(stderr, "1 entries, hash chain intact") {
		t.Errorf("audit: %d %q %q", code, out, stderr)
	}
	if strings.Contains(out, id) || !strings.Contains(out, privacy.IDHash(id)) {
		t.Errorf("audit line: %s", out)
	}

	code, out, _ = runCmd(t, "", "privacy", "export", "--installation", id, "--data", dir)
	if code != exitOK || !strings.Contains(out, `"erased": true`) || strings.Contains(out, "bookworm") {
		t.Errorf("export after erasure: %s", out)
	}

	if code, out, stderr := runCmd(t, "", "privacy", "purge", "--data", dir); code != exitOK || !strings.Contains(out, "transactions") {
		t.Errorf("purge: %d %s %s", code, out, stderr)
	}

	code, out, _ = runCmd(t, "", "privacy", "token", "--data", dir)
	if code != exitOK || len(strings.TrimSpace(out)) < 40 {
		t.Fatalf("token: %d %q", code, out)
	}
	hash, err := privacy.LoadTokenHash(dir)
	if err != nil || hash != privacy.TokenHash(strings.TrimSpace(out)) {
		t.Errorf("stored token hash does not match the printed token: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, privacy.TokenFile)); strings.Contains(string(b), strings.TrimSpace(out)) {
		t.Error("the token itself was stored")
	}
}

func TestPrivacyCommandsNeedAStore(t *testing.T) {
	for _, args := range [][]string{
		{"privacy", "erase", "--installation", "3b241101-e2bb-4255-8caf-4136c566a962"},
		{"privacy", "erase", "--installation", "3b241101-e2bb-4255-8caf-4136c566a962", "--data", t.TempDir()},
		{"privacy", "export", "--data", t.TempDir()},
		{"privacy", "status", "x", "--data", t.TempDir()},
	} {
		if code, _, stderr := runCmd(t, "", args...); code != exitError || stderr == "" {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	dir := seedStore(t, "3b241101-e2bb-4255-8caf-4136c566a962")
	if code, _, stderr := runCmd(t, "", "privacy", "erase", "--installation", "not-an-id", "--data", dir); code != exitError || !strings.Contains(stderr, "installation id") {
		t.Errorf("bad id: %d %s", code, stderr)
	}
}
