package web_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/memlog"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
	"github.com/provisionhq/provision/internal/web"
)

func newHTTPServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func signedIn(t *testing.T, srvURL string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(srvURL+"/dashboard/login", url.Values{"token": {token}, "next": {"/dashboard/quality"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c
}

// The default period is the days the data covers: a fleet of 21 days
// opened 10 days after its last one shows those 21 days, not the 30 days
// up to today; and at most the last 30 days of a longer history.
func TestDefaultPeriodIsTheData(t *testing.T) {
	f, log := rolluptest.SmallFleet(t)
	store := rollup.NewMemoryStore([]byte("web-test-key"))
	if _, err := (&rollup.Updater{Log: log, Store: store}).Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := f.Start.Format(time.DateOnly)
	last := f.Start.AddDate(0, 0, f.Days-1)
	// A store that cannot tell its days without reading the cells (no
	// rollup.DaySpanner) gives the same period.
	cellsOnly := struct{ rollup.Store }{store}
	for _, tc := range []struct {
		name     string
		now      time.Time
		from, to string
		store    rollup.Store
	}{
		{"after the data", last.AddDate(0, 0, 10), first, last.Format(time.DateOnly), store},
		{"on the last day", last, first, last.Format(time.DateOnly), store},
		// Days after today do not count: the period ends today.
		{"within the data", f.Start.AddDate(0, 0, 5), first, f.Start.AddDate(0, 0, 5).Format(time.DateOnly), store},
		{"after the data, read from cells", last.AddDate(0, 0, 10), first, last.Format(time.DateOnly), cellsOnly},
		{"within the data, read from cells", f.Start.AddDate(0, 0, 5), first, f.Start.AddDate(0, 0, 5).Format(time.DateOnly), cellsOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := web.New(web.Config{Token: token, Rollups: tc.store, PublicRoots: f.PublicRoots, Now: func() time.Time { return tc.now }})
			if err != nil {
				t.Fatal(err)
			}
			srv := newHTTPServer(t, h)
			_, body := get(t, signedIn(t, srv), srv+"/dashboard/quality")
			for _, want := range []string{`id="from" value="` + tc.from + `"`, `id="to" value="` + tc.to + `"`} {
				if !strings.Contains(body, want) {
					t.Errorf("the page lacks %s", want)
				}
			}
		})
	}
	// Longer than 30 days: the last 30.
	long, err := rolluptest.NewFleet(rolluptest.FleetConfig{Installations: 100, Days: 45, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	llog := memlog.New()
	if err := long.Fill(context.Background(), llog); err != nil {
		t.Fatal(err)
	}
	lstore := rollup.NewMemoryStore([]byte("web-test-key"))
	if _, err := (&rollup.Updater{Log: llog, Store: lstore}).Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	end := long.Start.AddDate(0, 0, long.Days-1)
	h, err := web.New(web.Config{Token: token, Rollups: lstore, PublicRoots: long.PublicRoots, Now: func() time.Time { return end }})
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(t, h)
	_, body := get(t, signedIn(t, srv), srv+"/dashboard/quality")
	if want := `id="from" value="` + end.AddDate(0, 0, -29).Format(time.DateOnly) + `"`; !strings.Contains(body, want) {
		t.Errorf("45 days of data: the page lacks %s", want)
	}
}

// The embedded assets are served one by one; their directory is not listed.
func TestAssetsAreNotListed(t *testing.T) {
	srv, _ := newServer(t)
	c := http.DefaultClient
	for path, want := range map[string]int{
		"/dashboard/assets/":           http.StatusNotFound,
		"/dashboard/assets/style.css":  http.StatusOK,
		"/dashboard/assets/report.css": http.StatusOK,
		"/dashboard/assets/nope.css":   http.StatusNotFound,
	} {
		code, body := get(t, c, srv.URL+path)
		if code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
		if strings.Contains(body, `href="style.css"`) {
			t.Errorf("%s lists the assets", path)
		}
	}
	if _, css := get(t, c, srv.URL+"/dashboard/assets/report.css"); !strings.Contains(css, ".charts{") {
		t.Error("report.css is not the reports' stylesheet")
	}
}
