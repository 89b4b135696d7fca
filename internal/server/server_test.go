package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/privacy"
)

// glog's flush daemon comes with the differential-privacy library the
// dashboard's reports use and lives for the whole process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"))
}

func testManifest(t *testing.T) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse("reference.yaml", manifest.ReferenceYAML())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const dashToken = "0123456789abcdef0123456789abcdef"

// started runs a server on 127.0.0.1:0 over b until the test ends, and
// returns it with a client that trusts its certificate.
func started(t *testing.T, b *backend.Backend, cfg Config) (*Server, *http.Client) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := New(cfg, b, testManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CertPEM) {
		t.Fatal("no certificate to trust")
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(c.CloseIdleConnections)
	waitHealthy(t, c, s.URL)
	return s, c
}

func waitHealthy(t *testing.T, c *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered 200: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sqliteBackend(t *testing.T, dir string) *backend.Backend {
	t.Helper()
	b, err := backend.Open(context.Background(), backend.Options{Store: dir, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func status(t *testing.T, c *http.Client, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Every route of the table answers on the embedded store: ingest, the
// erasure endpoint, health, metrics, the operator endpoints once a token
// exists, and the dashboard with its report API.
func TestRouteTableOnTheEmbeddedStore(t *testing.T) {
	dir := t.TempDir()
	if _, err := privacy.NewToken(dir); err != nil {
		t.Fatal(err)
	}
	s, c := started(t, sqliteBackend(t, dir), Config{Data: dir, DashboardToken: dashToken})
	if !s.GeneratedCert || s.Pin == "" {
		t.Errorf("generated %v, pin %q", s.GeneratedCert, s.Pin)
	}
	for _, f := range []string{CertFile, KeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	const id = "0b7e2c4e-5a0f-4d7b-9c1e-2f3a4b5c6d7e"
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/metrics", "", 200},
		{"POST", "/v1/submit", "{", 400},
		{"GET", "/v1/submit", "", 405},
		{"POST", "/v1/deletion", `{"installation_id":"` + id + `","request_id":"r-1"}`, 202},
		{"GET", "/v1/admin/audit", "", 401}, // mounted: it asks for the bearer token
		{"GET", "/dashboard", "", 200},      // mounted: its sign-in page (checked below)
		{"GET", "/v1/reports/quality", "", 401},
		{"GET", "/readyz/forward", "", 404}, // no forwarders configured
		{"GET", "/nowhere", "", 404},
	} {
		got, body := status(t, c, tc.method, s.URL+tc.path, tc.body)
		if got != tc.want {
			t.Errorf("%s %s = %d, want %d: %.200s", tc.method, tc.path, got, tc.want, body)
		}
		if tc.path == "/dashboard" && !strings.Contains(body, "sign in") {
			t.Errorf("/dashboard is not the dashboard's sign-in page: %.200s", body)
		}
	}
}

// A second start on the same directory presents the certificate the
// first one generated, so pinned agents keep trusting it.
func TestCertificateIsKeptAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	b := sqliteBackend(t, dir)
	first, err := New(Config{Listen: "127.0.0.1:0", Data: dir}, b, testManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Shutdown(); err != nil { // never started: only releases the port
		t.Fatal(err)
	}
	second, err := New(Config{Listen: "127.0.0.1:0", Data: dir}, b, testManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Shutdown()
	if !first.GeneratedCert || second.GeneratedCert || first.Pin != second.Pin {
		t.Errorf("generated %v then %v; pins %s, %s", first.GeneratedCert, second.GeneratedCert, first.Pin, second.Pin)
	}
}

// The dashboard is served on every backend that has rollups, PostgreSQL
// too.
func TestDashboardOnPostgres(t *testing.T) {
	pc := pgtest.Config(t)
	b, err := backend.Open(context.Background(), backend.Options{Store: pc.URL, Schema: pc.Schema, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	s, c := started(t, b, Config{Data: t.TempDir(), DashboardToken: dashToken})
	if got, body := status(t, c, "GET", s.URL+"/dashboard", ""); got != http.StatusOK || !strings.Contains(body, "sign in") {
		t.Fatalf("GET /dashboard = %d: %.200s", got, body)
	}
	req, _ := http.NewRequest("GET", s.URL+"/v1/reports/quality", nil)
	req.Header.Set("Authorization", "Bearer "+dashToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("quality report over PostgreSQL: %d %v", resp.StatusCode, err)
	}
}

// A listener that cannot be had fails New before anything is written.
func TestPortInUseWritesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	b := sqliteBackend(t, filepath.Join(dir, "store"))
	_, err = New(Config{Listen: ln.Addr().String(), Data: filepath.Join(dir, "certs")}, b, testManifest(t))
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "certs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a certificate directory was made: %v", err)
	}
}

// Shutdown is safe twice and Run refuses a second call.
func TestShutdownTwice(t *testing.T) {
	dir := t.TempDir()
	s, _ := started(t, sqliteBackend(t, dir), Config{Data: dir})
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal("second shutdown:", err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("Run after Shutdown succeeded")
	}
}

// A job that fails ends the run group, and its error is logged with the
// job's name and returned, not dropped.
func TestGroupReportsAJobsError(t *testing.T) {
	var logs bytes.Buffer
	g, ctx := newGroup(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)))
	g.Go("waits", func() error { <-ctx.Done(); return nil })
	g.Go("fails", func() error { return errors.New("store gone") })
	err := g.Wait()
	if err == nil || err.Error() != "fails: store gone" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(logs.String(), "job=fails") || !strings.Contains(logs.String(), "store gone") {
		t.Errorf("log: %s", logs.String())
	}
	g, _ = newGroup(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	g.Go("panics", func() error { panic("boom") })
	if err := g.Wait(); err == nil || !strings.Contains(err.Error(), "panics: panic: boom") {
		t.Fatalf("panic: err = %v", err)
	}
}

// A configuration that fails after the listener is open is an error, not
// a panic, and the port is free again.
func TestNewFailsCleanlyAfterListening(t *testing.T) {
	b := sqliteBackend(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	s, err := New(Config{Listener: ln, TLSCert: filepath.Join(t.TempDir(), "missing.crt"), TLSKey: filepath.Join(t.TempDir(), "missing.key")}, b, testManifest(t))
	if err == nil || s != nil {
		t.Fatalf("New = %v, %v; want an error", s, err)
	}
	again, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the listener was not closed: %v", err)
	}
	again.Close()
}
