package privacy_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/wire"
)

// TestEndToEndErasureThroughIngest runs the end-to-end erasure over HTTP:
// agents' batches go through the ingest server (validation for the
// region, the durable append), and the deletion request through the
// server's POST /v1/deletion route.
func TestEndToEndErasureThroughIngest(t *testing.T) {
	r := newRig(t)
	srv, err := ingest.NewServer(ingest.Deps{
		Log: r.sq, Manifest: r.m, Checkpoints: r.sq,
		Deletion: privacy.NewDeletionHandler(r.svc),
		Now:      r.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	postJSON := func(t *testing.T, path string, body []byte) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, hs.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "identity")
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	submit := func(t *testing.T, id string, events ...provision.Event) {
		t.Helper()
		b := provision.Batch{ID: nextID("b"), InstallationID: id, Region: provision.RegionEU,
			ManifestVersion: r.m.Version, SentAt: r.clock.Now(), Events: events}
		body, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		code, resp := postJSON(t, "/v1/submit", body)
		if code != http.StatusOK {
			t.Fatalf("submit: %d %s", code, resp)
		}
		var res struct {
			Accepted int `json:"accepted"`
			Rejected []struct {
				Code string `json:"code"`
			} `json:"rejected"`
		}
		if err := json.Unmarshal(resp, &res); err != nil {
			t.Fatal(err)
		}
		if res.Accepted != len(events) || len(res.Rejected) != 0 {
			t.Fatalf("submit: %s", resp)
		}
	}
	del := func(t *testing.T, id, requestID string) int {
		body, _ := json.Marshal(wire.DeletionRequest{InstallationID: id, RequestID: requestID})
		code, resp := postJSON(t, "/v1/deletion", body)
		if code == http.StatusAccepted {
			var dr wire.DeletionAnswer
			if err := json.Unmarshal(resp, &dr); err != nil || dr.RequestID != requestID || dr.Status != privacy.StatusComplete {
				t.Errorf("deletion answer %s (%v)", resp, err)
			}
		}
		return code
	}
	runEndToEnd(t, r, submit, del)
}
