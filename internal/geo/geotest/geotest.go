// Package geotest writes small MaxMind DB files for tests.
package geotest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Network maps a CIDR to a country and optional subdivision.
type Network struct {
	CIDR        string
	Country     string
	Subdivision string
	City        string // written to prove that the reader never uses it
}

// Write builds a GeoIP2-City-shaped database in a temporary directory and
// returns its path. Reserved ranges such as 127.0.0.0/8 may be mapped, so
// tests can use loopback addresses.
func Write(t testing.TB, networks ...Network) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoIP2-City",
		IncludeReservedNetworks: true,
		IPVersion:               6,
		RecordSize:              28,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range networks {
		_, ipnet, err := net.ParseCIDR(n.CIDR)
		if err != nil {
			t.Fatal(err)
		}
		rec := mmdbtype.Map{
			"country": mmdbtype.Map{"iso_code": mmdbtype.String(n.Country)},
		}
		if n.Subdivision != "" {
			rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String(n.Subdivision)}}
		}
		if n.City != "" {
			rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(n.City)}}
			rec["location"] = mmdbtype.Map{"latitude": mmdbtype.Float64(48.1), "longitude": mmdbtype.Float64(11.5)}
		}
		if err := tree.Insert(ipnet, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "test.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
