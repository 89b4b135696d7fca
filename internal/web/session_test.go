package web_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/throttle"
	"github.com/provisionhq/provision/internal/web"
)

// clock is a settable time for expiry and throttling.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newDashboard(t *testing.T, cfg web.Config) (http.Handler, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg.Token, cfg.Rollups, cfg.Now, cfg.CacheTTL = token, rollup.NewMemoryStore([]byte("k")), clk.now, -1
	d, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d, clk
}

func login(h http.Handler, tok, next, addr string) *httptest.ResponseRecorder {
	form := url.Values{"token": {tok}, "next": {next}}
	req := httptest.NewRequest("POST", "/dashboard/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if addr != "" {
		req.RemoteAddr = addr
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func sessionOf(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Value != "" {
			return c
		}
	}
	t.Fatalf("login answered %d without a session cookie", w.Code)
	return nil
}

// page tells whether the cookie opens a dashboard page.
func page(h http.Handler, c *http.Cookie) bool {
	req := httptest.NewRequest("GET", "/dashboard/quality", nil)
	req.AddCookie(c)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code == http.StatusOK
}

func TestSessionPerLoginAndLogoutRevokes(t *testing.T) {
	h, _ := newDashboard(t, web.Config{})
	a, b := sessionOf(t, login(h, token, "", "")), sessionOf(t, login(h, token, "", ""))
	if a.Value == b.Value {
		t.Fatal("two logins got the same session id")
	}
	if len(a.Value) < 40 {
		t.Errorf("session id %q is short", a.Value)
	}
	if !a.HttpOnly || a.SameSite != http.SameSiteStrictMode || a.Path != "/" {
		t.Errorf("cookie attributes: %+v", a)
	}
	if !page(h, a) || !page(h, b) {
		t.Fatal("a fresh session does not open the dashboard")
	}
	req := httptest.NewRequest("POST", "/dashboard/logout", nil)
	req.AddCookie(a)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", w.Code)
	}
	if page(h, a) {
		t.Error("the cookie still opens the dashboard after logout")
	}
	if !page(h, b) {
		t.Error("logging one session out ended another")
	}
	forged := &http.Cookie{Name: a.Name, Value: strings.Repeat("A", len(a.Value))}
	if page(h, forged) {
		t.Error("a made-up session id was accepted")
	}
}

func TestSessionExpires(t *testing.T) {
	h, clk := newDashboard(t, web.Config{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour})
	idle := sessionOf(t, login(h, token, "", ""))
	clk.add(11 * time.Minute)
	if page(h, idle) {
		t.Error("a session idle past its timeout was accepted")
	}
	busy := sessionOf(t, login(h, token, "", ""))
	for range 7 { // 63 minutes of use, never idle for 10
		if !page(h, busy) {
			break
		}
		clk.add(9 * time.Minute)
	}
	if page(h, busy) {
		t.Error("a session in use was accepted past its absolute timeout")
	}
}

func TestSessionCookieOverTLS(t *testing.T) {
	h, _ := newDashboard(t, web.Config{})
	form := url.Values{"token": {token}}
	req := httptest.NewRequest("POST", "https://provision.example/dashboard/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.TLS = &tls.ConnectionState{}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	c := sessionOf(t, w)
	if c.Name != "__Host-provision_session" || !c.Secure || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie over TLS: %+v", c)
	}
}

func TestLoginThrottled(t *testing.T) {
	h, clk := newDashboard(t, web.Config{PerClient: throttle.Rule{Every: 6 * time.Second, Burst: 5},
		Global: throttle.Rule{Every: time.Second, Burst: 12}})
	for i := range 5 {
		if w := login(h, "wrong-token-wrong-token", "", "192.0.2.1:1000"); w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, w.Code)
		}
	}
	w := login(h, token, "", "192.0.2.1:1000")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("6th attempt from one address: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	// Another address is not held up by the first one's failures, and
	// a right token costs nothing.
	for range 10 {
		if w := login(h, token, "", "192.0.2.2:1000"); w.Code != http.StatusSeeOther {
			t.Fatalf("operator at another address: %d", w.Code)
		}
	}
	// Spread over many addresses, the global bucket stops a guesser.
	refused := 0
	for i := range 20 {
		if login(h, "wrong-token-wrong-token", "", "198.51.100."+string(rune('0'+i%10))+":1").Code == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused < 10 {
		t.Errorf("global limit: %d of 20 spread guesses refused", refused)
	}
	clk.add(time.Minute)
	if w := login(h, token, "", "192.0.2.1:1000"); w.Code != http.StatusSeeOther {
		t.Errorf("after waiting: %d", w.Code)
	}
	// The report API's bearer token is throttled the same way.
	api := func(tok string) int {
		req := httptest.NewRequest("GET", "/v1/reports/quality", nil)
		req.RemoteAddr = "203.0.113.9:1"
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	for range 5 {
		api("wrong-token-wrong-token")
	}
	if code := api(token); code != http.StatusTooManyRequests {
		t.Errorf("report API after 5 wrong tokens: %d", code)
	}
}

func TestLoginRedirectsOnlyToTheDashboard(t *testing.T) {
	h, _ := newDashboard(t, web.Config{})
	for _, next := range []string{
		"/dashboard/../\\evil.example", "//evil.example", "/\\evil.example", "\\\\evil.example",
		"https://evil.example/dashboard", "javascript:alert(1)", "/dashboard/..", "/dashboard/../v1/admin",
		"/dashboard/%2e%2e/%2e%2e/x", "/dashboard/%5c%5cevil.example", "/dashboard//evil.example",
		"/dashboardx", "/v1/reports/quality", "dashboard/quality", "/dashboard/\tx", "/dashboard/./quality",
		"http:/dashboard", "//dashboard/quality", "/dashboard/quality\r\nLocation: //evil",
	} {
		w := login(h, token, next, "")
		if got := w.Header().Get("Location"); got != "/dashboard/quality" {
			t.Errorf("next=%q redirected to %q", next, got)
		}
	}
	for next, want := range map[string]string{
		"/dashboard/threats":                     "/dashboard/threats",
		"/dashboard/quality?from=2026-01-01&x=1": "/dashboard/quality?from=2026-01-01&x=1",
		"/dashboard":                             "/dashboard",
	} {
		if got := login(h, token, next, "").Header().Get("Location"); got != want {
			t.Errorf("next=%q redirected to %q, want %q", next, got, want)
		}
	}
}

func TestCrossSiteLoginRefused(t *testing.T) {
	h, _ := newDashboard(t, web.Config{})
	for _, hdr := range [][2]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
		req := httptest.NewRequest("POST", "/dashboard/login", strings.NewReader("token="+token))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(hdr[0], hdr[1])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
			t.Errorf("%s: %s: %d", hdr[0], hdr[1], w.Code)
		}
	}
}
