package sim

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/manifest"
)

// The fleet driven through the real agent library, via the gateway, to a
// server that follows the wire contract: every event the agents' sent logs
// show as accepted is stored once, every installation reaches the server
// with its own simulated address, each day's user counts equal the
// truth, and no more uploads reach the server at once than MaxUploads
// although more installations run at once. The fleet uploads by a clock of
// its own, the server's: every batch, the agents' and the wire's, is
// stamped by it when sent, so none looks like one from a device whose
// clock is off although the events are of past days.
func TestAgentFleetThroughGateway(t *testing.T) {
	s := newContractServer()
	s.delay = 5 * time.Millisecond
	uploadClock := func() time.Time { return time.Now().Add(-90 * 24 * time.Hour) }
	s.now = uploadClock
	ts := httptest.NewTLSServer(s)
	defer ts.Close()
	serverCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	gw, err := StartGateway(ts.URL, serverCA, "X-Forwarded-For", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "gateway.pem")
	if err := os.WriteFile(caFile, gw.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	wireHTTP, err := NewHTTPClient(serverCA, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer wireHTTP.CloseIdleConnections()
	f := mustFleet(t, 40, 5, 21)
	af := &AgentFleet{Root: filepath.Join(dir, "agents"), Server: gw.URL, CAFile: caFile, Now: uploadClock,
		Wire: &Client{BaseURL: ts.URL, HTTP: wireHTTP, AddressHeader: "X-Forwarded-For", Now: uploadClock}, MaxUploads: 1}
	defer af.Close()
	truth := NewTruth(f, true)
	s.refuse.Store(3) // agents meet an overloaded server first
	if err := Run(context.Background(), f, truth, RunOptions{ManifestVersion: manifest.Reference().Version, Send: af.Send, Workers: 4}); err != nil {
		t.Fatal(err)
	}
	delivered := truth.Delivered()
	if len(delivered) == 0 || len(delivered) != len(s.events) {
		t.Fatalf("agents saw %d events delivered, the server stored %d", len(delivered), len(s.events))
	}
	for _, id := range delivered {
		if s.events[id] != 1 {
			t.Fatalf("event stored %d times", s.events[id])
		}
	}
	if n := s.maxInFlight.Load(); n != 1 {
		t.Errorf("%d uploads reached the server at once, MaxUploads is 1", n)
	}
	if truth.Sent.Rejected != 0 || truth.Sent.DroppedBatches != 0 {
		t.Errorf("rejections: %+v", truth.Sent)
	}
	if n := s.skewed.Load(); n != 0 || s.requests.Load() == 0 {
		t.Errorf("%d of %d requests carried a sent_at off the upload clock", n, s.requests.Load())
	}
	want := map[string]bool{}
	for _, in := range f.Installations {
		if af.InstallationID(in.Index) != "" {
			want[in.Addr.String()] = true
		}
	}
	for a := range want {
		if !s.addrs[a] {
			t.Errorf("address %s never reached the server", a)
		}
	}
	// Every installation-day with a user_count reached the server as one.
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, day := range truth.Days {
		if got := len(s.users[day.Date]); got != day.Active || got == 0 {
			t.Errorf("%s: the server counted %d installations, the truth %d", day.Date, got, day.Active)
		}
	}
}
