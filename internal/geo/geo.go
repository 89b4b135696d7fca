// Package geo turns a client address into a coarse location — a country
// and at most its first-level subdivision — from a MaxMind DB file
// (GeoLite2, GeoIP2, DB-IP and others in the same format). Nothing finer is
// ever read from the database, and the address is not kept.
package geo

import (
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Location is what the server keeps of a client address.
type Location struct {
	Country     string // ISO 3166-1 alpha-2, "" when unknown
	Subdivision string // ISO 3166-2 subdivision code without the country, "" when unknown
}

// DB looks up locations. A nil *DB knows nothing: every address is unknown.
type DB struct {
	r *maxminddb.Reader
}

// Open opens a MaxMind DB file.
func Open(path string) (*DB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		// The error names the file, never an address.
		return nil, fmt.Errorf("geoip database %s: %w", path, err)
	}
	return &DB{r: r}, nil
}

// Close releases the database. It is safe on a nil DB.
func (d *DB) Close() error {
	if d == nil || d.r == nil {
		return nil
	}
	return d.r.Close()
}

// record selects only the coarse fields, so the decoder never even reads
// city, postal code or coordinates.
type record struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
}

// Lookup returns the location of addr, or the zero Location when the
// database is absent, has no entry, or holds something malformed.
func (d *DB) Lookup(addr netip.Addr) Location {
	if d == nil || d.r == nil || !addr.IsValid() {
		return Location{}
	}
	var rec record
	if err := d.r.Lookup(addr.Unmap()).Decode(&rec); err != nil {
		return Location{}
	}
	loc := Location{Country: code(rec.Country.ISOCode, 2, 2)}
	if loc.Country != "" && len(rec.Subdivisions) > 0 {
		loc.Subdivision = code(rec.Subdivisions[0].ISOCode, 1, 3)
	}
	return loc
}

// code accepts an upper-case alphanumeric code of min to max characters and
// returns "" for anything else, so a strange database cannot put arbitrary
// text into the store.
func code(s string, min, max int) string {
	if len(s) < min || len(s) > max {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return s
}
