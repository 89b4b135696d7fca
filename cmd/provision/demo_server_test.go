package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/manifest"
)

// The demo's server is serve's composition: an erasure request gets the
// same answer from both, and the demo server takes it (it once answered
// 501).
func TestDemoServerAnswersDeletionLikeServe(t *testing.T) {
	m, err := manifest.Parse("reference.yaml", manifest.ReferenceYAML())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	geo := filepath.Join(dir, "fleet.mmdb")
	if err := writeGeoIP(geo); err != nil {
		t.Fatal(err)
	}
	demo, err := startDemoServer(context.Background(), demoServerConfig{DataDir: dir, GeoIP: geo, AddressHeader: "X-Forwarded-For",
		Manifest: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer demo.Close()

	data := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, func(string) string { return "" }, strings.NewReader(""), out, io.Discard)
	}()
	defer func() { cancel(); <-done }()
	addr := waitListening(t, out.String)

	deletion := func(c *http.Client, url, body string) (int, string) {
		t.Helper()
		resp, err := c.Post(url+"/v1/deletion", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, body := range []string{
		`{"installation_id":"0b7e2c4e-5a0f-4d7b-9c1e-2f3a4b5c6d7e","request_id":"req-1"}`,
		`{"installation_id":"not-an-id","request_id":"req-2"}`,
		`{`,
	} {
		demoCode, demoBody := deletion(pinnedClient(t, dir), demo.URL, body)
		serveCode, serveBody := deletion(pinnedClient(t, data), "https://"+addr, body)
		if demoCode != serveCode || demoBody != serveBody {
			t.Errorf("%s: demo answered %d %s, serve %d %s", body, demoCode, demoBody, serveCode, serveBody)
		}
		if strings.Contains(body, "req-1") && demoCode != http.StatusAccepted {
			t.Errorf("demo server did not take the erasure: %d %s", demoCode, demoBody)
		}
	}
	if err := demo.Close(); err != nil {
		t.Fatal(err)
	}
	if err := demo.Close(); err != nil {
		t.Fatal("second close:", err)
	}
}
