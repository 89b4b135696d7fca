package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

// One agent flushing again and again keeps its transport and its
// connection; a CA file whose content changed is read anew (and here no
// longer verifies the server, which keeps the events); Close releases the
// connection (TestMain's leak check fails otherwise).
func TestFlushReusesItsConnectionUntilTheCAChanges(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		wire.WriteJSON(w, http.StatusOK, wire.SubmitAnswer{BatchID: "b", Accepted: 1, Rejected: []wire.Rejection{}})
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	// Another CA: a self-signed certificate that never signed the server's.
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	otherCA, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	writeCert := func(der []byte) {
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCert(srv.Certificate().Raw)

	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	if _, err := a.Accept("eu"); err != nil {
		t.Fatal(err)
	}
	up := Upload{Server: srv.URL, CAFile: ca, MaxAttempts: 1, BackoffBase: time.Millisecond}
	flush := func(code string) (FlushReport, error) {
		t.Helper()
		if err := a.RecordError(ctx, UIError{Type: "crash", Code: code}); err != nil {
			t.Fatal(err)
		}
		return a.Flush(ctx, up)
	}
	for _, code := range []string{"E1", "E2", "E3"} {
		if rep, err := flush(code); err != nil || rep.Batches != 1 {
			t.Fatalf("flush %s: %+v, %v", code, rep, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("three flushes made %d connections, want 1", n)
	}

	writeCert(otherCA)
	if _, err := flush("E4"); err == nil {
		t.Fatal("the changed CA file was not read: the old roots still verified the server")
	}
	if st, _ := a.Status(); st.Events == 0 && !st.Inflight {
		t.Fatalf("an upload that did not verify lost the events: %+v", st)
	}
	writeCert(srv.Certificate().Raw)
	if rep, err := a.Flush(ctx, up); err != nil || rep.Batches != 1 {
		t.Fatalf("after the CA file was restored: %+v, %v", rep, err)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3: one per CA content", n)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// A new installation id (withdrawal, then acceptance) never travels on
// the connection kept from the old one: that would link the two ids.
func TestNewInstallationIDGetsANewConnection(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/v1/deletion") {
			wire.WriteJSON(w, http.StatusAccepted, wire.DeletionAnswer{RequestID: "r", Status: "pending"})
			return
		}
		wire.WriteJSON(w, http.StatusOK, wire.SubmitAnswer{BatchID: "b", Accepted: 1, Rejected: []wire.Rejection{}})
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	up := Upload{Server: srv.URL, CAFile: ca, MaxAttempts: 1}
	for round := 1; round <= 2; round++ {
		if _, err := a.Accept("eu"); err != nil {
			t.Fatal(err)
		}
		if err := a.RecordError(ctx, UIError{Type: "crash", Code: "E1"}); err != nil {
			t.Fatal(err)
		}
		if rep, err := a.Flush(ctx, up); err != nil || rep.Batches != 1 {
			t.Fatalf("round %d: %+v, %v", round, rep, err)
		}
		// The second round adds the old id's deletion request, on a
		// connection of its own, and the new id's.
		if n, want := conns.Load(), int32(2*round-1); n != want {
			t.Fatalf("round %d: %d connections, want %d", round, n, want)
		}
		if _, err := a.Withdraw(); err != nil {
			t.Fatal(err)
		}
	}
}

// The deletion request of a withdrawn id and the first batch of the new
// id, sent by one flush, share neither a connection nor a TLS session.
func TestDeletionAndNewIDTravelApart(t *testing.T) {
	type request struct {
		path, conn string
		resumed    bool
	}
	var mu sync.Mutex
	var reqs []request
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		reqs = append(reqs, request{r.URL.Path, r.RemoteAddr, r.TLS.DidResume})
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/v1/deletion") {
			wire.WriteJSON(w, http.StatusAccepted, wire.DeletionAnswer{RequestID: "r", Status: "pending"})
			return
		}
		wire.WriteJSON(w, http.StatusOK, wire.SubmitAnswer{BatchID: "b", Accepted: 1, Rejected: []wire.Rejection{}})
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	up := Upload{Server: srv.URL, CAFile: ca, MaxAttempts: 1}
	record := func() {
		t.Helper()
		if _, err := a.Accept("eu"); err != nil {
			t.Fatal(err)
		}
		if err := a.RecordError(ctx, UIError{Type: "crash", Code: "E1"}); err != nil {
			t.Fatal(err)
		}
	}
	record()
	if _, err := a.Flush(ctx, up); err != nil {
		t.Fatal(err)
	}
	// A second flush of the same id resumes: the server issues tickets.
	if err := a.RecordError(ctx, UIError{Type: "crash", Code: "E2"}); err != nil {
		t.Fatal(err)
	}
	a.closeTransport()
	if _, err := a.Flush(ctx, up); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Withdraw(); err != nil {
		t.Fatal(err)
	}
	record() // a new installation id
	if rep, err := a.Flush(ctx, up); err != nil || rep.Deletions != 1 || rep.Batches != 1 {
		t.Fatalf("flush: %+v, %v", rep, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 4 || !reqs[1].resumed || !strings.HasSuffix(reqs[2].path, "/v1/deletion") {
		t.Fatalf("requests: %+v", reqs)
	}
	del, batch := reqs[2], reqs[3]
	if del.conn == batch.conn || batch.resumed {
		t.Errorf("the new id's batch shares the deletion's connection (%v) or resumed a session (%v)", del.conn == batch.conn, batch.resumed)
	}
	if batch.conn == reqs[1].conn {
		t.Error("the new id's batch went on the old id's connection")
	}
}
