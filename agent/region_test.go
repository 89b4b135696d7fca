package agent_test

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/agent"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/sqlite"
)

// ingestServer is the real submission handler over TLS with an SQLite log.
func ingestServer(t *testing.T) (*sqlite.Store, agent.Upload) {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "provision.db"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ingest.NewServer(ingest.Deps{Log: store, Manifest: manifest.Reference(), Ready: store.Ping,
		Checkpoints: store, Consumers: store.Consumers})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(h)
	t.Cleanup(func() { hs.Close(); store.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return store, agent.Upload{Server: hs.URL, CAFile: ca, Sleep: func(context.Context, time.Duration) error { return nil }}
}

// Events queued under eu keep eu after consent moves to br: they leave in
// an eu batch, and only what was recorded under br leaves labelled br.
func TestRegionSwitchKeepsQueuedEventsUnderTheirRegion(t *testing.T) {
	store, up := ingestServer(t)
	ctx := context.Background()
	a, err := agent.Open(agent.Config{StateDir: t.TempDir(),
		Software: agent.Software{Type: "vpn", Name: "Secure Connection", Version: "5.14.0.1234", Edition: "premium", Localization: "en-GB"},
		ReadOS: func(context.Context) (agent.OSInfo, error) {
			return agent.OSInfo{Type: "linux", Version: "12 (bookworm)", Edition: "Debian GNU/Linux"}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	uiErr := agent.UIError{Type: "connection_failed", Code: "E42", ControlID: "connect_button"}
	record := func(campaign string) {
		t.Helper()
		if err := a.RecordError(ctx, uiErr); err != nil {
			t.Fatal(err)
		}
		if err := a.RecordTask(ctx, agent.Task{Type: agent.TaskUpgrade, Status: agent.TaskSuccess, Duration: time.Minute, CampaignID: campaign}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Accept(provision.RegionEU); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	record("under-eu")
	if _, err := a.Accept("br"); err != nil {
		t.Fatal(err)
	}
	record("under-br") // the same error again: a new event under br, not a repeat of the eu one

	preview, err := a.DryRun(ctx, agent.Upload{})
	if err != nil {
		t.Fatal(err)
	}
	var previewRegions []string
	for _, b := range preview.Batches {
		previewRegions = append(previewRegions, b.Region)
	}
	rep, err := a.Flush(ctx, up)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Batches != 2 || rep.Rejected != 0 || rep.Refused != 0 {
		t.Fatalf("flush: %+v, want two batches, one per region, all accepted", rep)
	}

	recs, err := store.Read(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var sentRegions []string
	batchRegion := map[string]string{}
	errorsBy := map[string]int{}
	for _, r := range recs {
		if prev, ok := batchRegion[r.BatchID]; ok && prev != r.Region {
			t.Fatalf("batch %s mixes regions %s and %s", r.BatchID, prev, r.Region)
		}
		if _, ok := batchRegion[r.BatchID]; !ok {
			sentRegions = append(sentRegions, r.Region)
		}
		batchRegion[r.BatchID] = r.Region
		switch r.Event.Type {
		case "task":
			want := map[string]string{"under-eu": "eu", "under-br": "br"}[r.Event.Fields["task.campaign_id"].(string)]
			if r.Region != want {
				t.Errorf("task %v recorded under %s arrived labelled %s", r.Event.Fields["task.campaign_id"], want, r.Region)
			}
		case "ui_error":
			errorsBy[r.Region]++
		case "software", "os", "license", "user_count":
			if r.Region != "eu" {
				t.Errorf("%s collected under eu arrived labelled %s", r.Event.Type, r.Region)
			}
		}
	}
	if errorsBy["eu"] != 1 || errorsBy["br"] != 1 {
		t.Errorf("ui_error events by region = %v, want one recorded under each", errorsBy)
	}
	if len(sentRegions) != 2 || sentRegions[0] != "eu" || sentRegions[1] != "br" {
		t.Errorf("batches sent for %v, want eu then br", sentRegions)
	}
	if len(previewRegions) != 2 || previewRegions[0] != "eu" || previewRegions[1] != "br" {
		t.Errorf("dry run shows batches for %v, flush sent %v", previewRegions, sentRegions)
	}
}
