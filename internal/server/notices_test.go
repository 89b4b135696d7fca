package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision/agent"
	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/wire"
)

// Recipients are told of an erasure through a queue in the store: while
// they fail, the receipt shows the notices pending with their attempts;
// a server stopped in between and started again delivers them once they
// answer, and the receipt then shows each confirmed with its time, with
// the installation id gone from the queue.
func TestDeletionNoticesOutliveFailuresAndRestarts(t *testing.T) {
	for _, c := range []struct {
		name string
		open func(t *testing.T, dir string) *backend.Backend
	}{
		{"sqlite", sqliteBackend},
		{"postgres", func(t *testing.T, _ string) *backend.Backend {
			pc := pgtest.Config(t)
			b, err := backend.Open(context.Background(), backend.Options{Store: pc.URL, Schema: pc.Schema, MaxConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dataDir := t.TempDir()
			b := c.open(t, dataDir)
			peer := newRecipientsPeer(t)
			peer.failing.Store(true)
			cfg := Config{Data: dataDir, ForwardConfig: recipientsConfig(t, peer),
				NoticeRetry: wire.Policy{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond}, NoticeInterval: 20 * time.Millisecond}
			s1, _ := started(t, b, cfg)
			serverCA := filepath.Join(t.TempDir(), "server.pem")
			if err := os.WriteFile(serverCA, s1.CertPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := agent.Open(agent.Config{StateDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			consent, err := a.Accept("eu")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Withdraw(); err != nil {
				t.Fatal(err)
			}
			if rep, err := a.Flush(ctx, agent.Upload{Server: s1.URL, CAFile: serverCA}); err != nil || rep.Deletions != 1 {
				t.Fatalf("flush of the deletion: %+v %v", rep, err)
			}
			sent, err := a.Sent(0)
			if err != nil || len(sent) != 1 {
				t.Fatalf("sent = %+v %v", sent, err)
			}
			svc, _, err := b.PrivacyService(testManifest(t), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "failed attempts at both recipients", func() bool { return peer.refused.Load() >= 4 })
			r, err := svc.Status(ctx, sent[0].RequestID)
			if err != nil || r.Status != privacy.StatusComplete {
				t.Fatalf("status = %+v %v", r, err)
			}
			pending := 0
			for _, o := range r.Removed.Owners {
				if strings.HasPrefix(o.Owner, "recipient:") {
					if o.Status != privacy.OutcomeNoticePending || !strings.Contains(o.Detail, "attempts") || !strings.Contains(o.Detail, "503") {
						t.Errorf("while the recipient fails, %s = %+v", o.Owner, o)
					}
					pending++
				}
			}
			if pending != 2 {
				t.Fatalf("%d recipients on the receipt, want 2", pending)
			}

			if err := s1.Shutdown(); err != nil {
				t.Fatal(err)
			}
			peer.failing.Store(false)
			started(t, b, cfg)
			waitConfirmed(t, b, sent[0].RequestID)
			peer.mu.Lock()
			if len(peer.gaDeleted) != 1 || peer.gaDeleted[0] != consent.InstallationID ||
				len(peer.hookDelete) != 1 || peer.hookDelete[0] != consent.InstallationID {
				t.Errorf("confirmed deletions: ga %v, webhook %v", peer.gaDeleted, peer.hookDelete)
			}
			peer.mu.Unlock()
			notices, err := b.Privacy.(privacy.NoticeStore).Notices(ctx, sent[0].RequestID)
			if err != nil || len(notices) != 2 {
				t.Fatalf("notices = %+v %v", notices, err)
			}
			for _, n := range notices {
				if n.State != privacy.NoticeConfirmed || n.InstallationID != "" || n.ConfirmedAt.IsZero() || n.Attempts < 1 {
					t.Errorf("confirmed notice = %+v", n)
				}
			}
		})
	}
}
