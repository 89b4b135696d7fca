package geo_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/geo/geotest"
)

// Every layout people download gives the country; only the layouts that
// store subdivision codes give a subdivision.
func TestLayoutsOfCommonDatabases(t *testing.T) {
	networks := []geotest.Network{
		{CIDR: "127.0.1.0/24", Country: "DE", Subdivision: "BY", City: "Munich"},
		{CIDR: "2001:db8::/32", Country: "GB", Subdivision: "ENG", City: "London"},
	}
	for _, layout := range geotest.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			db, err := geo.Open(geotest.WriteLayout(t, layout, networks...))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			sub := map[geotest.Layout]bool{geotest.GeoIP2City: true}[layout]
			for addr, want := range map[string]geo.Location{
				"127.0.1.7":   {"DE", map[bool]string{true: "BY"}[sub]},
				"2001:db8::9": {"GB", map[bool]string{true: "ENG"}[sub]},
			} {
				if got := db.Lookup(netip.MustParseAddr(addr)); got != want {
					t.Errorf("Lookup(%s) = %+v, want %+v", addr, got, want)
				}
			}
		})
	}
}

func TestDatabaseWithoutCountryRefusedAtOpen(t *testing.T) {
	asn := geotest.WriteLayout(t, geotest.GeoLite2ASN, geotest.Network{CIDR: "127.0.1.0/24"}, geotest.Network{CIDR: "2001:db8::/32"})
	_, err := geo.Open(asn)
	if !errors.Is(err, geo.ErrNoCountry) || !strings.Contains(err.Error(), "GeoLite2-ASN") || !strings.Contains(err.Error(), "country") {
		t.Errorf("ASN database: err = %v, want ErrNoCountry naming the database type", err)
	}
	// A layout this package does not read: the country as a bare string
	// under another name.
	other := writeRecords(t, mmdbtype.Map{"iso2": mmdbtype.String("DE")})
	if _, err := geo.Open(other); !errors.Is(err, geo.ErrNoCountry) {
		t.Errorf("unknown layout: err = %v", err)
	}
	if _, err := geo.Open(writeRecords(t)); !errors.Is(err, geo.ErrNoCountry) {
		t.Errorf("empty database: err = %v", err)
	}
}

func writeRecords(t *testing.T, recs ...mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "Custom", IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs {
		_, ipnet, _ := net.ParseCIDR(fmt.Sprintf("127.0.%d.0/24", i+1))
		if err := tree.Insert(ipnet, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "custom.mmdb")
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Lookups that find nothing are counted and logged once, and the log
// never holds the address.
func TestMissesCountedAndLoggedOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	path := geotest.WriteLayout(t, geotest.IPLocationCountry,
		geotest.Network{CIDR: "127.0.1.0/24", Country: "DE"},
		geotest.Network{CIDR: "127.0.3.0/24", Country: "D1E"})
	db, err := geo.Open(path, geo.WithMetrics(reg), geo.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	misses := []string{"127.0.2.1", "127.0.2.2", "192.0.2.77", "2001:db8::5"}
	for _, a := range misses {
		if got := db.Lookup(netip.MustParseAddr(a)); got != (geo.Location{}) {
			t.Errorf("Lookup(%s) = %+v", a, got)
		}
	}
	db.Lookup(netip.MustParseAddr("127.0.3.9"))
	db.Lookup(netip.MustParseAddr("127.0.1.1"))
	if got, want := lookups(t, reg), map[string]float64{"not_found": 4, "invalid": 1, "found": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lookups = %v, want %v", got, want)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("%d log lines, want 1:\n%s", n, logs.String())
	}
	for _, a := range append(misses, "127.0.3.9", "127.0.2", "192.0.2") {
		if strings.Contains(logs.String(), a) {
			t.Errorf("the log holds an address: %s", logs.String())
		}
	}
}

// lookups reads the lookups metric through the registry, as a scrape would.
func lookups(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "provision_geoip_lookups_total" {
			for _, m := range mf.GetMetric() {
				out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}
