// Package geotest writes small MaxMind DB files for tests, in the layouts
// of the databases people download.
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
	Subdivision string // ISO 3166-2 code without the country, such as BY
	City        string // written to prove that the reader never uses it
}

// Layout is the record shape of one family of databases.
type Layout string

// The layouts of the databases in common use, each as its publisher writes
// its records.
const (
	// GeoIP2City is MaxMind's GeoIP2/GeoLite2 City: country.iso_code,
	// subdivisions[].iso_code, city, location, postal.
	GeoIP2City Layout = "GeoIP2-City"
	// GeoLite2Country is MaxMind's GeoLite2 Country: continent, country,
	// registered_country.
	GeoLite2Country Layout = "GeoLite2-Country"
	// DBIPCountryLite is DB-IP's free country database, in MaxMind's shape.
	DBIPCountryLite Layout = "DBIP-Country-Lite"
	// DBIPCityLite is DB-IP's free city database: MaxMind's shape, but its
	// subdivisions carry names only, no iso_code.
	DBIPCityLite Layout = "DBIP-City-Lite"
	// IPLocationCountry is ip-location-db's country databases (such as
	// geo-whois-asn-country): a flat record with country_code.
	IPLocationCountry Layout = "geo-whois-asn-country"
	// IPLocationCity is ip-location-db's city databases (such as
	// dbip-city): flat, with country_code and state1 as a name.
	IPLocationCity Layout = "dbip-city"
	// GeoLite2ASN is MaxMind's ASN database: no location at all.
	GeoLite2ASN Layout = "GeoLite2-ASN"
)

// Layouts are all the layouts that carry a country.
var Layouts = []Layout{GeoIP2City, GeoLite2Country, DBIPCountryLite, DBIPCityLite, IPLocationCountry, IPLocationCity}

// Write builds a GeoIP2-City database in a temporary directory and returns
// its path. Reserved ranges such as 127.0.0.0/8 may be mapped, so tests
// can use loopback addresses.
func Write(t testing.TB, networks ...Network) string {
	t.Helper()
	return WriteLayout(t, GeoIP2City, networks...)
}

// WriteLayout builds a database of the layout.
func WriteLayout(t testing.TB, layout Layout, networks ...Network) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            string(layout),
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
		if err := tree.Insert(ipnet, record(layout, n)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), string(layout)+".mmdb")
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

func names(s string) mmdbtype.Map { return mmdbtype.Map{"en": mmdbtype.String(s)} }

func record(layout Layout, n Network) mmdbtype.Map {
	country := mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2921044), "iso_code": mmdbtype.String(n.Country), "names": names("Country " + n.Country)}
	continent := mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148), "names": names("Europe")}
	location := mmdbtype.Map{"latitude": mmdbtype.Float64(48.1), "longitude": mmdbtype.Float64(11.5), "accuracy_radius": mmdbtype.Uint16(20)}
	switch layout {
	case GeoLite2Country:
		return mmdbtype.Map{"continent": continent, "country": country, "registered_country": country}
	case DBIPCountryLite:
		country["is_in_european_union"] = mmdbtype.Bool(true)
		return mmdbtype.Map{"continent": continent, "country": country}
	case DBIPCityLite:
		rec := mmdbtype.Map{"continent": continent, "country": country, "location": location}
		if n.Subdivision != "" {
			rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"names": names("Subdivision " + n.Subdivision)}}
		}
		if n.City != "" {
			rec["city"] = mmdbtype.Map{"names": names(n.City)}
		}
		return rec
	case IPLocationCountry:
		return mmdbtype.Map{"country_code": mmdbtype.String(n.Country)}
	case IPLocationCity:
		return mmdbtype.Map{"country_code": mmdbtype.String(n.Country), "state1": mmdbtype.String("Subdivision " + n.Subdivision),
			"state2": mmdbtype.String(""), "city": mmdbtype.String(n.City), "postcode": mmdbtype.String("80331"),
			"latitude": mmdbtype.Float64(48.1), "longitude": mmdbtype.Float64(11.5), "timezone": mmdbtype.String("Europe/Berlin")}
	case GeoLite2ASN:
		return mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(64496), "autonomous_system_organization": mmdbtype.String("Example AS")}
	}
	rec := mmdbtype.Map{"continent": continent, "country": country, "registered_country": country}
	if n.Subdivision != "" {
		rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2951839), "iso_code": mmdbtype.String(n.Subdivision), "names": names("Subdivision " + n.Subdivision)}}
	}
	if n.City != "" {
		rec["city"] = mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2867714), "names": names(n.City)}
		rec["location"] = location
		rec["postal"] = mmdbtype.Map{"code": mmdbtype.String("80331")}
	}
	return rec
}
