package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/forward/forwardtest"
)

func TestForwardFields(t *testing.T) {
	code, out, stderr := runCmd(t, "", "forward", "fields", "--format", "md")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"| `installation.id` | `client_id` |", "`software_version`", "`fields.os.update_packages`"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, _, _ := runCmd(t, "", "forward", "fields", "--format", "pdf"); code != exitError {
		t.Errorf("unknown format: exit %d", code)
	}
}

// The documentation's field table is the command's output, so it cannot
// drift from the manifest.
func TestForwardingDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("../../docs/forwarding.md")
	if err != nil {
		t.Fatal(err)
	}
	_, out, _ := runCmd(t, "", "forward", "fields", "--format", "md")
	if !bytes.Contains(doc, []byte(out)) {
		t.Errorf("docs/forwarding.md does not hold the current table; regenerate it with `provision forward fields --format md`:\n%s", out)
	}
}

func TestForwardCheck(t *testing.T) {
	srv := forwardtest.NewGA4Server(t, "G-CHECK", "check-secret")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "forward.yaml")
	doc := fmt.Sprintf("google_analytics:\n  measurement_id: G-CHECK\n  api_secret_env: GA_SECRET\n  endpoint: %s\n  ca_file: %s\n",
		srv.Endpoint(), forwardtest.CAFile(t, srv.Server))
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		secret string
		code   int
		want   string
	}{
		{"check-secret", exitOK, "no messages"},
		{"wrong", exitFinding, "validationMessages"},
	} {
		var stdout, stderr bytes.Buffer
		getenv := func(k string) string {
			if k == "GA_SECRET" {
				return tc.secret
			}
			return ""
		}
		code := run(context.Background(), []string{"forward", "check", "--config", cfg}, getenv, strings.NewReader(""), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.want) {
			t.Errorf("secret %q: exit %d, stdout %q, stderr %q", tc.secret, code, stdout.String(), stderr.String())
		}
		if strings.Contains(stdout.String()+stderr.String(), tc.secret) {
			t.Errorf("the api secret was printed")
		}
	}
	if len(srv.Accepted()) != 0 {
		t.Error("check recorded a hit on the collection endpoint")
	}
	if code, _, _ := runCmd(t, "", "forward", "check"); code != exitError {
		t.Errorf("check without --config: exit %d", code)
	}
}
