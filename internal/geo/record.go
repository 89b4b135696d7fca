package geo

import (
	"github.com/oschwald/maxminddb-golang/v2"
)

// record selects only the coarse fields of every layout read here, so the
// decoder never even reads city, postal code or coordinates. MaxMind's
// GeoIP2/GeoLite2 and DB-IP's Lite databases nest the country
// (country.iso_code) and list subdivisions; ip-location-db's databases
// keep a flat country_code, and their state1 is a name, not a code.
type record struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	CountryCode  string `maxminddb:"country_code"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
}

// location returns the coarse location and the lookup's result: found, or
// not_found when the record names no country, or invalid when what it
// names is not a code.
func (r *record) location() (Location, string) {
	raw := r.Country.ISOCode
	if raw == "" {
		raw = r.CountryCode
	}
	if raw == "" {
		return Location{}, resultNotFound
	}
	loc := Location{Country: code(raw, 2, 2)}
	if loc.Country == "" {
		return Location{}, resultInvalid
	}
	if len(r.Subdivisions) > 0 {
		// DB-IP Lite's subdivisions carry names only: no code, no subdivision.
		loc.Subdivision = code(r.Subdivisions[0].ISOCode, 1, 3)
	}
	return loc, resultFound
}

// probeRecords is how many networks Open reads looking for a country; a
// country database has one in nearly every record, so a handful suffices,
// and the bound keeps a start with a huge database quick.
const probeRecords = 4096

// probe reads the first networks of the database until one yields a
// country.
func probe(r *maxminddb.Reader) error {
	n := 0
	for res := range r.Networks() {
		if n++; n > probeRecords {
			break
		}
		if res.Err() != nil {
			return res.Err()
		}
		var rec record
		if res.Decode(&rec) != nil {
			continue
		}
		if _, result := rec.location(); result == resultFound {
			return nil
		}
	}
	return ErrNoCountry
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
