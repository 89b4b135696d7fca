package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
	"github.com/provisionhq/provision/internal/web"
)

// The differential-privacy library imports glog, whose flush daemon starts
// at init and is no goroutine of ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"))
}

const token = "operator-token-0123456789"

func newServer(t testing.TB) (*httptest.Server, *rolluptest.Fleet) {
	t.Helper()
	f, log := rolluptest.SmallFleet(t)
	store := rollup.NewMemoryStore([]byte("web-test-key"))
	if _, err := (&rollup.Updater{Log: log, Store: store}).Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, err := web.New(web.Config{Token: token, Rollups: store, PublicRoots: f.PublicRoots,
		Now: func() time.Time { return f.Start.AddDate(0, 0, f.Days-1) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, f
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestConfigValidate(t *testing.T) {
	if _, err := web.New(web.Config{Token: "short", Rollups: rollup.NewMemoryStore(nil)}); err == nil {
		t.Error("a short token was accepted")
	}
	if _, err := web.New(web.Config{Token: token}); err == nil {
		t.Error("no store was accepted")
	}
}

func TestDashboardLoginAndFilters(t *testing.T) {
	srv, f := newServer(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}

	// Without a session every page leads to the login form.
	code, body := get(t, c, srv.URL+"/dashboard/threats")
	if code != 200 || !strings.Contains(body, `name="token"`) {
		t.Fatalf("no session: %d, login form missing", code)
	}
	resp, err := c.PostForm(srv.URL+"/dashboard/login", url.Values{"token": {"wrong-token-wrong-token"}, "next": {"/dashboard/threats"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	resp, err = c.PostForm(srv.URL+"/dashboard/login", url.Values{"token": {token}, "next": {"/dashboard/threats"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body = string(b)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/dashboard/threats" {
		t.Fatalf("after login: %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	for _, want := range []string{"interception_spreading", "signer_sudden", "<svg", f.Planted.InterceptionRoot} {
		if !strings.Contains(body, want) {
			t.Errorf("threats page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("the dashboard needs no script")
	}

	code, body = get(t, c, srv.URL+"/dashboard/quality")
	if code != 200 || !strings.Contains(body, "failing_campaign") || !strings.Contains(body, `<option value="5.15.0"`) {
		t.Fatalf("quality page: %d", code)
	}
	if !strings.Contains(body, ">5.14.0<") {
		t.Fatal("unfiltered page lacks version 5.14.0 rows")
	}
	code, body = get(t, c, srv.URL+"/dashboard/quality?version=5.15.0&from=2026-10-01&to=2026-10-21")
	if code != 200 || strings.Contains(body, ">5.14.0</td>") || !strings.Contains(body, ">5.15.0</td>") {
		t.Fatalf("version filter not applied: %d", code)
	}
	code, body = get(t, c, srv.URL+"/dashboard/quality?from=2026-10-21&to=2026-10-01")
	if code != http.StatusBadRequest || !strings.Contains(body, "before") {
		t.Fatalf("bad period: %d", code)
	}
	code, _ = get(t, c, srv.URL+"/dashboard/assets/style.css")
	if code != 200 {
		t.Fatalf("embedded stylesheet: %d", code)
	}
	resp, err = c.PostForm(srv.URL+"/dashboard/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, body = get(t, c, srv.URL+"/dashboard/quality"); !strings.Contains(body, `name="token"`) {
		t.Fatal("still signed in after logout")
	}
}

func TestReportsAPI(t *testing.T) {
	srv, _ := newServer(t)
	call := func(path, auth string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	period := "from=2026-10-01&to=2026-10-21"
	if resp, body := call("/v1/reports/threats?"+period, ""); resp.StatusCode != 401 || !strings.Contains(body, `"unauthorized"`) {
		t.Fatalf("no token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := call("/v1/reports/threats?"+period, "Bearer nope"); resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	resp, body := call("/v1/reports/threats?"+period, "Bearer "+token)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("threats json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		Report string `json:"report"`
		Flags  []struct{ Kind string }
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Report != "threats" || len(doc.Flags) == 0 {
		t.Fatalf("threats json: %v %+v", err, doc)
	}
	if resp, body := call("/v1/reports/quality?format=csv&"+period, "Bearer "+token); resp.StatusCode != 200 || !strings.HasPrefix(body, "table,") {
		t.Fatalf("quality csv: %d", resp.StatusCode)
	}
	for path, want := range map[string]int{
		"/v1/reports/quality?format=pdf":                  400,
		"/v1/reports/sales?" + period:                     404,
		"/v1/reports/quality?from=2026-10-21&to=2026-1-1": 400,
	} {
		if resp, _ := call(path, "Bearer "+token); resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func formBody(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

// countingStore counts reads, to tell a cached page from a built one.
type countingStore struct {
	rollup.Store
	reads atomic.Int64
}

func (c *countingStore) Cells(ctx context.Context, q rollup.Query) ([]*rollup.Cell, error) {
	c.reads.Add(1)
	return c.Store.Cells(ctx, q)
}

func TestWarmFillsTheDefaultViews(t *testing.T) {
	f, log := rolluptest.SmallFleet(t)
	store := &countingStore{Store: rollup.NewMemoryStore([]byte("k"))}
	if _, err := (&rollup.Updater{Log: log, Store: store}).Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	// No section cache: what is answered without reading the store comes
	// from the snapshot Warm materialised.
	d, err := web.New(web.Config{Token: token, Rollups: store, PublicRoots: f.PublicRoots, CacheTTL: -1,
		Now: func() time.Time { return f.Start.AddDate(0, 0, f.Days-1) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	login := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/dashboard/login", formBody("token="+token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	d.ServeHTTP(login, req)
	cookie := login.Result().Cookies()[0]
	get := func(page string, auth bool) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", page, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		} else {
			req.AddCookie(cookie)
		}
		d.ServeHTTP(rec, req)
		return rec
	}
	before := store.reads.Load()
	for _, page := range []string{"/dashboard/quality", "/dashboard/threats", "/dashboard/quality?version=5.15.0"} {
		if rec := get(page, false); rec.Code != 200 || !strings.Contains(rec.Body.String(), "<svg") {
			t.Fatalf("%s: %d", page, rec.Code)
		}
	}
	for _, api := range []string{"/v1/reports/quality", "/v1/reports/threats?format=csv"} {
		if rec := get(api, true); rec.Code != 200 {
			t.Fatalf("%s: %d", api, rec.Code)
		}
	}
	if after := store.reads.Load(); after != before {
		t.Fatalf("materialised views read the store %d times", after-before)
	}
	// The default period starts on the data's first day: start a day later.
	from := f.Start.AddDate(0, 0, 1).Format(time.DateOnly)
	if rec := get("/dashboard/quality?from="+from, false); rec.Code != 200 {
		t.Fatalf("custom period: %d", rec.Code)
	}
	if store.reads.Load() == before {
		t.Fatal("a page of another period did not build its report")
	}
}
