package web_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/rollup/rolluptest"
	"github.com/provisionhq/provision/internal/web"
)

// BenchmarkDashboardPage loads the dashboard pages for 100,000
// installations over 30 days and reports the 95th percentile of page time,
// with the section cache (warm) and without it (cold).
func BenchmarkDashboardPage(b *testing.B) {
	s := rolluptest.NewScale(b, 100_000, 30)
	now := func() time.Time { return s.Start.AddDate(0, 0, s.Days-1) }
	for _, mode := range []struct {
		name string
		ttl  time.Duration
	}{{"warm", time.Hour}, {"cold", -1}} {
		b.Run(mode.name, func(b *testing.B) {
			h, err := web.New(web.Config{Token: token, Rollups: s.Store, CacheTTL: mode.ttl, Now: now})
			if err != nil {
				b.Fatal(err)
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
			for _, p := range pages {
				get(p) // fills the cache when there is one
			}
			var times []time.Duration
			i := 0
			for b.Loop() {
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
		})
	}
}
