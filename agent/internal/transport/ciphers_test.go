package transport

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/provisionhq/provision/internal/wire"
)

// Over TLS 1.2 the agent accepts only ECDHE with an AEAD cipher: a server
// that offers nothing but CBC-SHA1 gets no handshake.
func TestAgentRefusesCBCSuites(t *testing.T) {
	for _, tc := range []struct {
		suite uint16
		ok    bool
	}{
		{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, false},
		{tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, false},
		{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, false}, // no forward secrecy
		{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, true},
		{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, true},
	} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			wire.WriteJSON(w, http.StatusOK, wire.SubmitAnswer{BatchID: "b", Accepted: 1, Rejected: []wire.Rejection{}})
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.TLS = &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tc.suite}}
		srv.StartTLS()
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := New(Options{Server: srv.URL, CAFile: ca})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Submit(context.Background(), []byte(`{}`))
		c.Close()
		srv.Close()
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tls.CipherSuiteName(tc.suite), err)
		}
	}
}
