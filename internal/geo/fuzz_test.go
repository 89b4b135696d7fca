package geo_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/geo/geotest"
)

// FuzzOpen feeds damaged databases to Open and Lookup: they must fail
// cleanly, never panic.
func FuzzOpen(f *testing.F) {
	for _, layout := range append(geotest.Layouts, geotest.GeoLite2ASN) {
		b, err := os.ReadFile(geotest.WriteLayout(f, layout, geotest.Network{CIDR: "127.0.1.0/24", Country: "DE", Subdivision: "BY"}))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.mmdb")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := geo.Open(path)
		if err != nil {
			return
		}
		defer db.Close()
		for _, a := range []string{"127.0.1.1", "2001:db8::1", "0.0.0.0"} {
			db.Lookup(netip.MustParseAddr(a))
		}
	})
}
