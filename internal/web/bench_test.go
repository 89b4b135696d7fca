package web_test

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
	"github.com/provisionhq/provision/internal/web"
)

// The dashboard benchmark's fleet; building 100,000 × 30 takes about a
// minute on a busy 2-core machine, so it can be made smaller for a quick
// look (the figures to quote are at the full size).
var (
	benchInstalls = flag.Int("dashboard.installs", 100_000, "installations of BenchmarkDashboardPage's fleet")
	benchDays     = flag.Int("dashboard.days", 30, "days of BenchmarkDashboardPage's fleet")
)

// scaleOnSQLite copies the scale fleet's rollups into the SQLite store
// that serve mounts (backend.Open on a directory).
func scaleOnSQLite(b *testing.B) (*rolluptest.Scale, rollup.Store) {
	ctx := context.Background()
	s := rolluptest.NewScale(b, *benchInstalls, *benchDays)
	be, err := backend.Open(ctx, backend.Options{Store: b.TempDir(), Create: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	cells, err := s.Store.Cells(ctx, rollup.Query{})
	if err != nil {
		b.Fatal(err)
	}
	var certs []rollup.Cert
	for _, v := range []string{rollup.ViewTLSIssuer, rollup.ViewFileSigner} {
		cs, _ := s.Store.Certs(ctx, v)
		certs = append(certs, cs...)
	}
	if err := be.Rollups.Apply(ctx, "scale", 0, 1, rollup.Delta{Cells: cells, Certs: certs}); err != nil {
		b.Fatal(err)
	}
	return s, be.Rollups
}

// BenchmarkDashboardPage loads the dashboard pages (both reports and a
// version filter) for 100,000 installations over 30 days on SQLite, with
// no section cache, and reports the 95th percentile of page time:
// "materialised" answers from the views Warm built after the rollup
// update (what serve does), "built" builds each page from the store (a
// period nobody materialised, or serve's ColdDashboard). "warm-ms" is
// what one Warm costs. The clock moves on by more than the dashboard
// keeps the data's period between requests, so every page finds the
// period again, as the first page after an idle minute does.
func BenchmarkDashboardPage(b *testing.B) {
	s, store := scaleOnSQLite(b)
	var ticks atomic.Int64
	now := func() time.Time {
		return s.Start.AddDate(0, 0, s.Days-1).Add(time.Duration(ticks.Load()) * 61 * time.Second)
	}
	for _, mode := range []struct {
		name string
		warm bool
	}{{"materialised", true}, {"built", false}} {
		b.Run(mode.name, func(b *testing.B) {
			h, err := web.New(web.Config{Token: token, Rollups: store, CacheTTL: -1, Now: now})
			if err != nil {
				b.Fatal(err)
			}
			var warm time.Duration
			if mode.warm {
				start := time.Now()
				if err := h.Warm(context.Background()); err != nil {
					b.Fatal(err)
				}
				warm = time.Since(start)
			}
			login := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/dashboard/login", formBody("token="+token))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			h.ServeHTTP(login, req)
			cookie := login.Result().Cookies()[0]
			pages := []string{"/dashboard/quality", "/dashboard/threats", "/dashboard/quality?version=5.15.0"}
			get := func(page string) int {
				req := httptest.NewRequest("GET", page, nil)
				req.AddCookie(cookie)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec.Code
			}
			var times []time.Duration
			i := 0
			for b.Loop() {
				ticks.Add(1)
				start := time.Now()
				code := get(pages[i%len(pages)])
				times = append(times, time.Since(start))
				if code != http.StatusOK {
					b.Fatalf("%s: %d", pages[i%len(pages)], code)
				}
				i++
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)*95/100])/1e6, "p95-ms")
			if mode.warm {
				b.ReportMetric(float64(warm)/1e6, "warm-ms")
			}
		})
	}
}
