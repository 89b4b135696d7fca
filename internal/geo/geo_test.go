package geo_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/geo/geotest"
)

func TestLookup(t *testing.T) {
	path := geotest.Write(t,
		geotest.Network{CIDR: "127.0.1.0/24", Country: "DE", Subdivision: "BY", City: "Munich"},
		geotest.Network{CIDR: "127.0.2.0/24", Country: "BR"},
		geotest.Network{CIDR: "127.0.3.0/24", Country: "not a code", Subdivision: "XX"},
		geotest.Network{CIDR: "2001:db8::/32", Country: "GB", Subdivision: "ENG"},
	)
	db, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		addr string
		want geo.Location
	}{
		{"127.0.1.9", geo.Location{"DE", "BY"}},
		{"::ffff:127.0.1.9", geo.Location{"DE", "BY"}},
		{"127.0.2.1", geo.Location{"BR", ""}},
		{"127.0.3.1", geo.Location{}},
		{"127.0.4.1", geo.Location{}},
		{"2001:db8::1", geo.Location{"GB", "ENG"}},
		{"::1", geo.Location{}},
	} {
		if got := db.Lookup(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Lookup(%s) = %+v, want %+v", tc.addr, got, tc.want)
		}
	}
	if got := db.Lookup(netip.Addr{}); got != (geo.Location{}) {
		t.Errorf("Lookup(invalid) = %+v", got)
	}
}

func TestNilDBIsUnknown(t *testing.T) {
	var db *geo.DB
	if got := db.Lookup(netip.MustParseAddr("127.0.0.1")); got != (geo.Location{}) {
		t.Errorf("nil DB Lookup = %+v", got)
	}
	if err := db.Close(); err != nil {
		t.Error(err)
	}
}

func TestOpenRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.mmdb")
	os.WriteFile(path, []byte("not a maxmind database"), 0o600)
	if _, err := geo.Open(path); err == nil {
		t.Error("Open accepted a file that is not a MaxMind DB")
	}
	if _, err := geo.Open(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Error("Open accepted a missing file")
	}
}
