package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A server whose certificate the simulator cannot verify (a self-signed
// one and no --ca) stops the run at once with the reason, rather than
// retrying every upload in silence.
func TestSimulateStopsOnAnUnverifiedServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a request reached the server through a certificate that does not verify")
	}))
	defer srv.Close()
	for _, via := range []string{"agent", "wire"} {
		code, _, stderr := runCmd(t, "", "simulate", "--server", srv.URL, "--installs", "2", "--days", "1", "--via", via)
		if code != exitError || !strings.Contains(stderr, "--ca FILE") || !strings.Contains(stderr, "certificate") {
			t.Errorf("--via %s: exit %d, stderr %q; want exit %d naming the certificate and --ca", via, code, stderr, exitError)
		}
	}
}
