package rolluptest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/rollup"
)

// splitmix64 stands in for the keyed hash of an installation id: both are
// uniformly distributed 64-bit values.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Scale is a large store built straight from cells, for the speed and
// accuracy figures: making tens of millions of records would take longer
// than the report being measured.
type Scale struct {
	Store *rollup.MemoryStore
	Start time.Time
	Days  int
	// ExactActive is the exact number of distinct installations active in
	// the whole period and on each day.
	ExactPeriod int
	ExactDaily  []int
}

// NewScale builds rollups for n installations over days days.
func NewScale(tb testing.TB, n, days int) *Scale {
	tb.Helper()
	f, err := NewFleet(FleetConfig{Installations: 100, Days: 21}) // only for its certificates
	if err != nil {
		tb.Fatal(err)
	}
	s := &Scale{Store: rollup.NewMemoryStore([]byte("scale")), Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), Days: days, ExactDaily: make([]int, days)}
	seenEver := make([]bool, n)
	var certs []rollup.Cert
	for _, c := range []struct{ id, name string }{{f.Planted.PublicIssuer, "public"}, {f.Planted.InterceptionRoot, "intercept"}, {f.Planted.CorporateProxy, "corp"}} {
		certs = append(certs, rollup.Cert{View: rollup.ViewTLSIssuer, ID: c.id, Subject: "CN=" + c.name})
	}
	for _, c := range []string{f.Planted.VendorSigner, f.Planted.StolenSigner} {
		certs = append(certs, rollup.Cert{View: rollup.ViewFileSigner, ID: c, Subject: "CN=" + c[:6]})
	}
	for d := range days {
		day := s.Start.AddDate(0, 0, d).Format(time.DateOnly)
		cells := map[string]*rollup.Cell{}
		add := func(view, dims string, h uint64) *rollup.Cell {
			k := view + "/" + dims
			c := cells[k]
			if c == nil {
				c = rollup.NewCell(rollup.Key{Day: day, View: view, Dims: dims})
				cells[k] = c
			}
			c.Events++
			c.Weight++
			c.Installs.InsertHash(h)
			return c
		}
		for i := range n {
			h := splitmix64(uint64(i))
			if splitmix64(h^uint64(d))%10 == 0 {
				continue // 90% active each day
			}
			s.ExactDaily[d]++
			seenEver[i] = true
			add(rollup.ViewActive, rollup.Dims("all", "all"), h)
			add(rollup.ViewTask, rollup.Dims("type", "update", "country", countries[i%len(countries)]), h)
			add(rollup.ViewActive, rollup.Dims("product", "Secure Connection"), h)
			add(rollup.ViewActive, rollup.Dims("version", []string{"5.14.0", "5.15.0", "5.16.0"}[i%3]), h)
			add(rollup.ViewActive, rollup.Dims("edition", []string{"free", "premium"}[i%2]), h)
			add(rollup.ViewActive, rollup.Dims("localization", []string{"en-GB", "de-DE", "fr-FR", "pt-BR"}[i%4]), h)
			add(rollup.ViewActive, rollup.Dims("os.version", []string{"11 23H2", "11 24H2", "10 22H2"}[i%3]), h)
			add(rollup.ViewOSReporting, rollup.Dims("all", "all"), h)
			add(rollup.ViewUpdate, rollup.Dims("package", "KB5034441"), h)
			add(rollup.ViewLicense, rollup.Dims("site", "https://shop.example.com"), h)
			add(rollup.ViewTLSIssuer, rollup.Dims("spki", f.Planted.PublicIssuer), h)
			add(rollup.ViewFileSigner, rollup.Dims("thumbprint", f.Planted.VendorSigner), h)
			if i%10 == 0 {
				add(rollup.ViewTLSIssuer, rollup.Dims("spki", f.Planted.CorporateProxy), h)
			}
			if i < n/100*(1+d) {
				add(rollup.ViewTLSIssuer, rollup.Dims("spki", f.Planted.InterceptionRoot), h)
			}
			if d >= days-5 && i%3 == 0 {
				add(rollup.ViewFileSigner, rollup.Dims("thumbprint", f.Planted.StolenSigner), h)
			}
			if i%4 == 0 && d%3 == 0 {
				add(rollup.ViewUIError, rollup.Dims("type", "connection_failed", "code", "E42", "control", "button.connect"), h)
			}
			if i%30 == d%30 {
				c := add(rollup.ViewTask, rollup.Dims("type", "upgrade", "campaign", fmt.Sprintf("campaign-%d", i%4)), h)
				if c.Durations == nil {
					c.Durations = newDurations()
				}
				_ = c.Durations.Add(float64(30000 + h%90000))
			}
		}
		delta := rollup.Delta{Certs: certs}
		for _, c := range cells {
			delta.Cells = append(delta.Cells, c)
		}
		if err := s.Store.Apply(context.Background(), "scale", int64(d), int64(d+1), delta); err != nil {
			tb.Fatal(err)
		}
	}
	for _, v := range seenEver {
		if v {
			s.ExactPeriod++
		}
	}
	return s
}
