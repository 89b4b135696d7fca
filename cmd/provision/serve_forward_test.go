package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/forward/forwardtest"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/manifest"
)

// TestServeForwardsAndErases runs provision serve with forwarders
// configured: a user count submitted over HTTPS reaches the GA-rules server
// and the webhook receiver with only their declared fields, the forwarders'
// status is served, and after a deletion request through the server nothing
// of the installation is held, not even what it sent afterwards.
func TestServeForwardsAndErases(t *testing.T) {
	const (
		measurementID = "G-SERVE01"
		apiSecret     = "serve-test-api-secret"
		hookSecret    = "serve-test-webhook-secret-of-32-bytes!"
	)
	ga := forwardtest.NewGA4Server(t, measurementID, apiSecret)
	tp := forwardtest.NewReceiver(t, []byte(hookSecret))
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "forward.yaml")
	cfg := fmt.Sprintf(`google_analytics:
  measurement_id: %s
  api_secret_env: TEST_GA_SECRET
  endpoint: %s
  ca_file: %s
third_party:
  url: %s/counts
  secret_env: TEST_HOOK_SECRET
  ca_file: %s
poll_interval: 20ms
`, measurementID, ga.Endpoint(), forwardtest.CAFile(t, ga.Server), tp.URL, forwardtest.CAFile(t, tp.Server))
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TEST_GA_SECRET": apiSecret, "TEST_HOOK_SECRET": hookSecret}
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--forward-config", cfgFile},
			func(k string) string { return env[k] }, strings.NewReader(""), out, errOut)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d:\n%s", code, errOut)
		}
	}()
	addr := waitListening(t, out.String)
	client := pinnedClient(t, data)

	install := "0b7e2c4e-5a0f-4d7b-9c1e-2f3a4b5c6d7e"
	count := func(batchID string) []byte {
		now := time.Now().UTC()
		b := provision.Batch{ID: batchID, InstallationID: install, Region: "eu", ManifestVersion: manifest.Reference().Version, SentAt: now,
			Events: []provision.Event{{ID: batchID + "-e", Type: "user_count", Time: now, Fields: map[string]any{
				"software.name": "Secure Connection", "software.version": "5.14.0.1234", "os.version": "12 (bookworm)",
				"os.update_packages": []any{"openssl 3.0.15"},
			}}}}
		return ingesttest.Gzip(ingesttest.JSON(b))
	}
	if status, body, err := submit(client, addr, count("fwd-1")); err != nil || status != 200 {
		t.Fatalf("submit = %d %s %v", status, body, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(ga.Accepted()) == 0 || len(tp.Received()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not forwarded: GA %d, webhook %d; violations %v; log:\n%s", len(ga.Accepted()), len(tp.Received()), ga.Violations(), errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := ga.Violations(); len(v) > 0 {
		t.Errorf("GA rules broken: %v", v)
	}
	got := tp.Received()[0].Fields
	for k := range got {
		if k != "software.name" && k != "software.version" && k != "os.version" && k != "os.update_packages" && k != "installation.id" {
			t.Errorf("webhook received undeclared field %q", k)
		}
	}
	if got["installation.id"] != install {
		t.Errorf("webhook installation.id = %v", got["installation.id"])
	}

	resp, err := client.Get("https://" + addr + "/readyz/forward")
	if err != nil {
		t.Fatal(err)
	}
	var status struct {
		Healthy    bool              `json:"healthy"`
		Forwarders []json.RawMessage `json:"forwarders"`
	}
	json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	if len(status.Forwarders) != 2 {
		t.Errorf("/readyz/forward lists %d forwarders", len(status.Forwarders))
	}

	// The agent withdraws consent: the deletion request is taken, and what
	// the installation sends afterwards is neither stored nor forwarded.
	req, _ := http.NewRequest("POST", "https://"+addr+"/v1/deletion",
		bytes.NewReader([]byte(`{"installation_id":"`+install+`","request_id":"del-serve-1"}`)))
	req.Header.Set("Content-Type", "application/json")
	dresp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dresp.Body.Close()
	if dresp.StatusCode != http.StatusAccepted && dresp.StatusCode != http.StatusOK {
		t.Fatalf("deletion: %d", dresp.StatusCode)
	}
	if status, body, err := submit(client, addr, count("fwd-2")); err != nil || status != 200 {
		t.Fatalf("submit after erasure = %d %s %v", status, body, err)
	}
	// The operator's export reads the same store: nothing of the
	// installation is left, including the batch sent after the erasure.
	code, export, stderr := runCmd(t, "", "privacy", "export", "--installation", install, "--data", data)
	if code != exitOK {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	for _, leaked := range []string{"fwd-1-e", "fwd-2-e", "5.14.0.1234"} {
		if strings.Contains(export, leaked) {
			t.Errorf("export after erasure still holds %q:\n%s", leaked, export)
		}
	}
	if strings.Contains(errOut.String(), install) {
		t.Errorf("the installation id appears in the server's log")
	}
}
