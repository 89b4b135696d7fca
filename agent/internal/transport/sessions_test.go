package transport

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestResumptionAcrossClients checks that a second client, as after a
// restart, resumes the session the first kept in the file, that the file
// is owner-only, and that a full handshake still uses the post-quantum
// group.
func TestResumptionAcrossClients(t *testing.T) {
	var states []tls.ConnectionState
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		states = append(states, *r.TLS)
		w.Write([]byte(`{"batch_id":"b","accepted":1}`))
	}))
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	writeCA(t, srv, ca)
	path := filepath.Join(t.TempDir(), "tls-session")
	submit := func(now time.Time) {
		c, err := New(Options{Server: srv.URL, CAFile: ca, Sessions: &FileSessionCache{Path: path, Now: func() time.Time { return now }}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, _, err := c.Submit(context.Background(), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	submit(start)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("session file mode %v, want 0600", fi.Mode().Perm())
	}
	submit(start.Add(time.Hour))
	submit(start.Add(DefaultSessionMaxAge + 2*time.Hour)) // the kept ticket is too old
	if len(states) != 3 {
		t.Fatalf("%d requests", len(states))
	}
	if states[0].DidResume || states[0].CurveID != tls.X25519MLKEM768 {
		t.Errorf("first handshake: resumed %v, group %v", states[0].DidResume, states[0].CurveID)
	}
	if !states[1].DidResume {
		t.Error("the second client did not resume the kept session")
	}
	if states[2].DidResume || states[2].CurveID != tls.X25519MLKEM768 {
		t.Errorf("after the age bound: resumed %v, group %v", states[2].DidResume, states[2].CurveID)
	}
}

// TestDeclinedResumptionIsFullPostQuantumHandshake makes the server forget
// its ticket keys: the client must not settle for a full handshake on the
// resumption's classical group.
func TestDeclinedResumptionIsFullPostQuantumHandshake(t *testing.T) {
	var states []tls.ConnectionState
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		states = append(states, *r.TLS)
		w.Write([]byte(`{"batch_id":"b","accepted":1}`))
	}))
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	writeCA(t, srv, ca)
	path := filepath.Join(t.TempDir(), "tls-session")
	submit := func() {
		c, err := New(Options{Server: srv.URL, CAFile: ca, Sessions: &FileSessionCache{Path: path}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, _, err := c.Submit(context.Background(), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	submit()
	srv.TLS.SetSessionTicketKeys([][32]byte{{1, 2, 3}}) // as after a server restart
	submit()
	if len(states) != 2 || states[1].DidResume || states[1].CurveID != tls.X25519MLKEM768 {
		t.Fatalf("after a declined resumption: %+v", states)
	}
}

func TestSessionFileParseRejectsDamage(t *testing.T) {
	good := formatSession(sessionEntry{key: "h", saved: time.Unix(1, 0), ticket: []byte("t"), state: []byte("s")})
	if _, err := parseSession(good); err != nil {
		t.Fatal(err)
	}
	for i := range len(good) {
		if _, err := parseSession(good[:i]); err == nil {
			t.Errorf("a file cut at %d parsed", i)
		}
	}
}

func FuzzParseSession(f *testing.F) {
	f.Add(formatSession(sessionEntry{key: "h", saved: time.Unix(1, 0), ticket: []byte("t"), state: []byte("s")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseSession(data)
		if err != nil {
			return
		}
		if _, err := parseSession(formatSession(e)); err != nil {
			t.Fatalf("a parsed entry does not parse again: %v", err)
		}
	})
}

func writeCA(t *testing.T, srv *httptest.Server, path string) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
}
