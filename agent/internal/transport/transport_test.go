package transport

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/wire"
)

func TestNewRefusesWhatIsNotSafe(t *testing.T) {
	for _, o := range []Options{
		{Server: "http://127.0.0.1:1"},
		{Server: "127.0.0.1:1"},
		{Server: "https://127.0.0.1:1", Pin: "abcd"},
		{Server: "https://127.0.0.1:1", Encoding: "brotli"},
		{Server: "https://127.0.0.1:1", CAFile: "/nonexistent"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	c, err := New(Options{Server: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v := c.http.Transport.(*http.Transport).TLSClientConfig.MinVersion; v < 0x0303 {
		t.Fatalf("minimum TLS version %x", v)
	}
}

// TestPinAndTrust posts to a real TLS server: the pinned key is accepted,
// another pin and an untrusted certificate are permanent errors.
func TestPinAndTrust(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		wire.WriteJSON(w, http.StatusOK, wire.SubmitAnswer{BatchID: "b", Accepted: 1, Rejected: []wire.Rejection{}})
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	good := certs.SPKISHA256Hex(srv.Certificate())
	bad := "00" + good[2:]
	if good == bad {
		bad = "11" + good[2:]
	}
	for _, tc := range []struct {
		name, ca, pin string
		ok            bool
	}{
		{"pinned", ca, good, true},
		{"other pin", ca, bad, false},
		{"untrusted", "", "", false},
	} {
		c, err := New(Options{Server: srv.URL, CAFile: tc.ca, Pin: tc.pin})
		if err != nil {
			t.Fatal(err)
		}
		res, _, err := c.Submit(context.Background(), []byte(`{}`))
		c.Close()
		if tc.ok {
			if err != nil || res.Accepted != 1 {
				t.Errorf("%s: %+v, %v", tc.name, res, err)
			}
			continue
		}
		if err == nil || wire.IsRetryable(err) {
			t.Errorf("%s: err %v should be permanent", tc.name, err)
		}
		if tc.pin != "" && !errors.Is(err, ErrPinMismatch) {
			t.Errorf("%s: err %v is not ErrPinMismatch", tc.name, err)
		}
	}
}

// Gzip writers come from a pool: each body still decodes to exactly its
// own batch, whatever the writer compressed before.
func TestPooledGzipBodies(t *testing.T) {
	c, err := New(Options{Server: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	batches := [][]byte{
		[]byte(`{"events":[` + strings.Repeat(`{"type":"ui_error","id":"0123456789abcdef"},`, 300) + `{}]}`),
		[]byte(`{}`),
		[]byte(`{"events":[{"type":"task"}]}`),
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, b := range append(batches, batches...) {
				body, err := c.encode(b)
				if err != nil {
					t.Error(err)
					return
				}
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(zr)
				if err != nil || !bytes.Equal(got, b) {
					t.Errorf("body decodes to %d bytes (%v), want %d", len(got), err, len(b))
				}
			}
		})
	}
	wg.Wait()
}
