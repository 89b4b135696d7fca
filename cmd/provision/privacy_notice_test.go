package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/provisionhq/provision/internal/forward/forwardtest"
	"github.com/provisionhq/provision/internal/privacy"
)

// `privacy erase --forward-config` tells the recipients the file
// configures, once at once, and prints the receipt with the confirmation.
func TestPrivacyEraseTellsTheRecipients(t *testing.T) {
	const id = "3b241101-e2bb-4255-8caf-4136c566a962"
	dir := seedStore(t, id)
	var (
		mu   sync.Mutex
		told []string
	)
	peer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["event"] == "deletion" {
			mu.Lock()
			told = append(told, fmt.Sprint(body["installation_id"]))
			mu.Unlock()
		}
	}))
	defer peer.Close()
	secret := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(secret, []byte("cli-test-webhook-secret-of-32-bytes!"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "forward.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("third_party:\n  url: %s/hook\n  secret_file: %s\n  ca_file: %s\n",
		peer.URL, secret, forwardtest.CAFile(t, peer))), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd(t, "", "privacy", "erase", "--installation", id, "--data", dir, "--request-id", "cli-1", "--forward-config", cfg)
	if code != exitOK {
		t.Fatalf("erase: %d %s", code, stderr)
	}
	var rec privacy.Request
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatal(err)
	}
	confirmed := false
	for _, o := range rec.Removed.Owners {
		if o.Owner == "recipient:third_party" && o.Status == privacy.OutcomeConfirmed && !o.At.IsZero() {
			confirmed = true
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !confirmed || len(told) != 1 || told[0] != id {
		t.Errorf("receipt owners %+v; webhook told %v", rec.Removed.Owners, told)
	}
}
