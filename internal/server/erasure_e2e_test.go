package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provisionhq/provision/agent"
)

// recipientsPeer is a local Google Analytics (collection, token exchange,
// user deletion) and third-party webhook in one TLS server.
type recipientsPeer struct {
	srv                   *httptest.Server
	mu                    sync.Mutex
	gaDeleted, hookDelete []string
	// failing makes the deletion endpoints answer 503; refused counts
	// the deletions they refused.
	failing atomic.Bool
	refused atomic.Int64
}

func newRecipientsPeer(t *testing.T) *recipientsPeer {
	p := &recipientsPeer{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mp/collect", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if r.ParseForm() != nil || r.Form.Get("assertion") == "" {
			http.Error(w, "no assertion", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, `{"access_token":"t","token_type":"Bearer","expires_in":3600}`)
	})
	mux.HandleFunc("POST /upsert", func(w http.ResponseWriter, r *http.Request) {
		if p.failing.Load() {
			p.refused.Add(1)
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		id, _ := req["id"].(map[string]any)
		p.mu.Lock()
		p.gaDeleted = append(p.gaDeleted, id["userId"].(string))
		p.mu.Unlock()
		req["deletionRequestTime"] = time.Now().UTC().Format(time.RFC3339Nano)
		_ = json.NewEncoder(w).Encode(req)
	})
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["event"] == "deletion" && p.failing.Load() {
			p.refused.Add(1)
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if body["event"] == "deletion" {
			p.mu.Lock()
			p.hookDelete = append(p.hookDelete, body["installation_id"].(string))
			p.mu.Unlock()
		}
	})
	p.srv = httptest.NewTLSServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// filesHolding returns, per file under the roots, a needle it contains.
func filesHolding(t *testing.T, needles []string, roots ...string) map[string]string {
	t.Helper()
	found := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, n := range needles {
				if bytes.Contains(b, []byte(n)) {
					found[path] = n
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found
}

// The done-when test of erasure on the embedded store: canaries planted
// through the real agent and server (a rejected value and a rollup update
// included) are, after the consent is withdrawn and the server stopped
// cleanly, in no file of the data directory or the agent's state; the
// counts drop the installation without a rebuild; both recipients were
// told and the receipt says so.
func TestWithdrawalErasesEveryByteAndTellsRecipients(t *testing.T) {
	ctx := context.Background()
	dataDir, stateDir := t.TempDir(), t.TempDir()
	peer := newRecipientsPeer(t)
	b := sqliteBackend(t, dataDir)
	s, _ := started(t, b, Config{Data: dataDir, ForwardConfig: recipientsConfig(t, peer), RollupInterval: 50 * time.Millisecond})
	serverCA := filepath.Join(t.TempDir(), "server.pem")
	if err := os.WriteFile(serverCA, s.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	up := agent.Upload{Server: s.URL, CAFile: serverCA}
	a, c := plantCanaries(t, stateDir, up)
	cells := func() int64 { return activeDistinct(t, b) }
	waitFor(t, "the rollup update", func() bool { return cells() > 0 })
	// The test can fail: before the withdrawal the canaries are on disk.
	for _, n := range []string{c.InstallationID, swCanary, errCanary, ctlCanary, rejCanary} {
		if len(filesHolding(t, []string{n}, dataDir, stateDir)) == 0 {
			t.Fatalf("%s was never written: the test would check nothing", n)
		}
	}
	if len(filesHolding(t, []string{c.InstallationID}, dataDir)) == 0 {
		t.Fatal("the installation id never reached the data directory")
	}

	if _, err := a.Withdraw(); err != nil {
		t.Fatal(err)
	}
	if rep, err := a.Flush(ctx, up); err != nil || rep.Deletions != 1 {
		t.Fatalf("flush of the deletion: %+v %v", rep, err)
	}
	waitFor(t, "the rollup refresh", func() bool { return cells() == 0 })

	sent, err := a.Sent(0)
	if err != nil || len(sent) != 1 || sent[0].Kind != "deletion" {
		t.Fatalf("sent log after withdrawal = %+v %v", sent, err)
	}
	waitConfirmed(t, b, sent[0].RequestID)
	peer.mu.Lock()
	if len(peer.gaDeleted) != 1 || peer.gaDeleted[0] != c.InstallationID || len(peer.hookDelete) != 1 || peer.hookDelete[0] != c.InstallationID {
		t.Errorf("recipients told: ga %d, webhook %d", len(peer.gaDeleted), len(peer.hookDelete))
	}
	peer.mu.Unlock()

	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	needles := []string{c.InstallationID, swCanary, errCanary, ctlCanary, rejCanary}
	if got := filesHolding(t, needles, dataDir, stateDir); len(got) > 0 {
		t.Fatalf("after erasure and a clean stop, files still hold: %v", got)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
