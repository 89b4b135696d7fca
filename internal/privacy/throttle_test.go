package privacy_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/wire"
)

// Failed operator tokens are throttled per client address, and a right
// token from another address still gets through.
func TestAdminTokenFailuresThrottled(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	token, err := privacy.NewToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := privacy.LoadTokenHash(dir)
	if err != nil {
		t.Fatal(err)
	}
	byHeader := func(req *http.Request) (netip.Addr, bool) {
		a, err := netip.ParseAddr(req.Header.Get("X-Client"))
		return a, err == nil
	}
	h := privacy.NewAdminHandler(r.svc, hash, byHeader)
	id := newInstallationID()
	call := func(client, tok string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/admin/export", strings.NewReader(`{"installation_id":"`+id+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Client", client)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	// Right tokens are never counted.
	for range 20 {
		if w := call("192.0.2.7", token); w.Code != http.StatusOK {
			t.Fatalf("right token: %d %s", w.Code, w.Body)
		}
	}
	for i := range 10 {
		if w := call("192.0.2.8", "wrong"); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d", i, w.Code)
		}
	}
	w := call("192.0.2.8", token)
	if w.Code != http.StatusTooManyRequests || errorCode(t, w) != wire.CodeTooManyAttempts || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after 10 failures: %d %s (Retry-After %q)", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if w := call("192.0.2.7", token); w.Code != http.StatusOK {
		t.Errorf("another address: %d", w.Code)
	}
}
