// Package geo turns a client address into a coarse location — a country
// and at most its first-level subdivision — from a MaxMind DB file. It reads
// the layouts of the databases people use: MaxMind's GeoIP2 and GeoLite2
// (country.iso_code, subdivisions[0].iso_code), DB-IP's Lite databases (the
// same shape) and ip-location-db's (country_code at the top level). Nothing
// finer is ever read from the database, and the address is not kept or
// logged.
package geo

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Location is what the server keeps of a client address.
type Location struct {
	Country     string // ISO 3166-1 alpha-2, "" when unknown
	Subdivision string // ISO 3166-2 subdivision code without the country, "" when unknown
}

// DB looks up locations. A nil *DB knows nothing: every address is unknown.
type DB struct {
	r       *maxminddb.Reader
	kind    string // the database's own type, for the log
	log     *slog.Logger
	lookups *prometheus.CounterVec
	missed  sync.Once
}

// Option configures Open.
type Option func(*options)

type options struct {
	log *slog.Logger
	reg prometheus.Registerer
}

// WithLogger logs, once, that a lookup found no country. nil discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMetrics registers provision_geoip_lookups_total{result} with reg.
func WithMetrics(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// ErrNoCountry is returned by Open for a database none of whose records
// has a country in a layout this package reads.
var ErrNoCountry = errors.New("no usable country field (country.iso_code or country_code)")

// Open opens a MaxMind DB file and probes its records for a country, so a
// database that would leave every location empty — an ASN database, a
// layout not read here — is refused at start rather than discovered later.
func Open(path string, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	r, err := maxminddb.Open(path)
	if err != nil {
		// The error names the file, never an address.
		return nil, fmt.Errorf("geoip database %s: %w", path, err)
	}
	if err := probe(r); err != nil {
		r.Close()
		return nil, fmt.Errorf("geoip database %s (type %q): %w", path, r.Metadata.DatabaseType, err)
	}
	d := &DB{r: r, kind: r.Metadata.DatabaseType, log: o.log}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.lookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "provision_geoip_lookups_total",
		Help: "GeoIP lookups by result: found (a country), not_found (no entry or no country for the address), invalid (an entry whose country is not an ISO code, or that does not decode).",
	}, []string{"result"})
	for _, res := range []string{resultFound, resultNotFound, resultInvalid} {
		d.lookups.WithLabelValues(res)
	}
	if o.reg != nil {
		if err := o.reg.Register(d.lookups); err != nil {
			r.Close()
			return nil, fmt.Errorf("geoip metrics: %w", err)
		}
	}
	return d, nil
}

// Close releases the database. It is safe on a nil DB.
func (d *DB) Close() error {
	if d == nil || d.r == nil {
		return nil
	}
	return d.r.Close()
}

const (
	resultFound    = "found"
	resultNotFound = "not_found"
	resultInvalid  = "invalid"
)

// Lookup returns the location of addr, or the zero Location when the
// database is absent, has no entry, or holds something malformed.
func (d *DB) Lookup(addr netip.Addr) Location {
	if d == nil || d.r == nil || !addr.IsValid() {
		return Location{}
	}
	res := d.r.Lookup(addr.Unmap())
	if !res.Found() {
		d.miss(resultNotFound)
		return Location{}
	}
	var rec record
	if err := res.Decode(&rec); err != nil {
		d.miss(resultInvalid)
		return Location{}
	}
	loc, result := rec.location()
	if result != resultFound {
		d.miss(result)
		return Location{}
	}
	d.lookups.WithLabelValues(resultFound).Inc()
	return loc
}

// miss counts a lookup without a country and logs the first one. The log
// says which database, never which address.
func (d *DB) miss(result string) {
	d.lookups.WithLabelValues(result).Inc()
	d.missed.Do(func() {
		d.log.Info("geoip: an address had no country in the database; further misses are only counted",
			"database_type", d.kind, "result", result, "metric", "provision_geoip_lookups_total")
	})
}
