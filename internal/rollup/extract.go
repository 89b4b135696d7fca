package rollup

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"
	"strings"
	"time"

	provision "github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/manifest"
)

// Cert describes an issuer or signer certificate that a cell's dims name.
// Only issuers of TLS chains and signers of files are kept: public objects,
// never a site's own certificate.
type Cert struct {
	View       string // ViewTLSIssuer or ViewFileSigner
	ID         string // the dims value: SPKI pin or "dn:" digest for issuers, SHA-1 thumbprint for signers
	Subject    string
	Issuer     string
	NotBefore  time.Time
	NotAfter   time.Time
	SelfSigned bool
	DER        []byte // nil when the certificate itself was not sent
}

// UpsertCertSQL stores a certificate in rollup_certs, the same table on
// every SQL store; both engines bind $1 to $8 by position. The values are
// view, id, subject, issuer, not_before, not_after (in the store's own time
// form, empty when unknown), self_signed and der. A row first stored from
// its name alone takes the certificate once it is sent, and is never
// overwritten after that.
const UpsertCertSQL = `INSERT INTO rollup_certs (view, id, subject, issuer, not_before, not_after, self_signed, der)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	ON CONFLICT (view, id) DO UPDATE SET subject = excluded.subject, issuer = excluded.issuer,
		not_before = excluded.not_before, not_after = excluded.not_after,
		self_signed = excluded.self_signed, der = excluded.der
	WHERE rollup_certs.der IS NULL AND excluded.der IS NOT NULL`

// DefaultWeightCap caps one record's event.count so that one installation's
// repeats cannot dominate a cell's occurrence figure.
const DefaultWeightCap = 1000

// aggregator folds records into cells.
type aggregator struct {
	mac       hash.Hash
	weightCap int64
	cells     []*Cell          // in the order they were first counted
	byKey     map[string]*Cell // the cells by day, view and dims, each followed by a zero byte
	keyBuf    []byte
	certs     map[string]Cert // by View+"/"+ID
	certKey   []byte          // a key of certs being looked up
	parsed    map[string]*x509.Certificate
	skipped   int

	// The records of a batch come one after the other with the same
	// installation and mostly the same day: the last of each is kept.
	lastID     string
	lastHash   uint64
	hashed     bool
	lastDay    int64
	lastDayStr string
}

func newAggregator(key []byte, weightCap int64) *aggregator {
	if weightCap <= 0 {
		weightCap = DefaultWeightCap
	}
	return &aggregator{
		mac:       hmac.New(sha256.New, key),
		weightCap: weightCap,
		byKey:     make(map[string]*Cell),
		certs:     make(map[string]Cert),
		parsed:    make(map[string]*x509.Certificate),
	}
}

// installHash is the keyed 64-bit hash of an installation id: the only form
// of the id that reaches a sketch.
func (a *aggregator) installHash(id string) uint64 {
	if a.hashed && id == a.lastID {
		return a.lastHash
	}
	a.mac.Reset()
	a.mac.Write([]byte(id))
	var sum [sha256.Size]byte
	a.lastID, a.lastHash, a.hashed = id, binary.BigEndian.Uint64(a.mac.Sum(sum[:0])), true
	return a.lastHash
}

// day is the Day of an event at t received at received, formatted once
// per day in a row.
func (a *aggregator) day(t, received time.Time) string {
	if t.IsZero() {
		t = received
	}
	n := t.Unix()
	d := n / 86400
	if n < 0 && n%86400 != 0 {
		d--
	}
	if a.lastDayStr == "" || d != a.lastDay {
		a.lastDay, a.lastDayStr = d, t.UTC().Format(time.DateOnly)
	}
	return a.lastDayStr
}

// Day is the UTC day a record counts for: the event's own time, or the
// time it was received when the event has none.
func Day(r *provision.Record) string {
	t := r.Event.Time
	if t.IsZero() {
		t = r.ReceivedAt
	}
	return t.UTC().Format(time.DateOnly)
}

type contribution struct {
	a        *aggregator
	day      string
	h        uint64
	weight   int64
	failed   bool
	duration float64
	hasDur   bool
}

// to counts the contribution in the cell of its day, view and the
// dimensions Dims(pairs...).
func (c *contribution) to(view string, pairs ...string) {
	a := c.a
	// The cell is found by the bytes of its key, so a cell already
	// counted costs no string of dims.
	b := append(a.keyBuf[:0], c.day...)
	b = append(b, 0)
	b = append(b, view...)
	b = append(b, 0)
	dims := len(b)
	b = appendDims(b, pairs...)
	a.keyBuf = b
	cell := a.byKey[string(b)]
	if cell == nil {
		// The key's string holds the dims: one allocation, not two. The
		// day and view are those of the key, which names the cell alone.
		s := string(b)
		cell = NewCell(Key{Day: c.day, View: view, Dims: s[dims:]})
		a.cells = append(a.cells, cell)
		a.byKey[s] = cell
	}
	cell.Events++
	cell.Weight += c.weight
	if c.failed {
		cell.Failures++
	}
	cell.Installs.InsertHash(c.h)
	if c.hasDur {
		if cell.Durations == nil {
			cell.Durations = newDurations()
		}
		_ = cell.Durations.Add(c.duration) // durations are validated non-negative
	}
}

// fields are an event's fields as the rollups read them: a record's map,
// or a stored event read in place (batchcodec.EventView), which gives the
// same answers without a map per event.
type fields interface {
	// Str returns the field when it is a string, "" otherwise.
	Str(key string) string
	// Value returns the field, nil when absent.
	Value(key string) any
	// Integer returns the field as manifest.Integer reads it.
	Integer(key string) (int64, bool)
}

// fieldMap is the fields of a record.
type fieldMap map[string]any

func (m fieldMap) Str(key string) string {
	s, _ := m[key].(string)
	return s
}

func (m fieldMap) Value(key string) any { return m[key] }

func (m fieldMap) Integer(key string) (int64, bool) { return manifest.Integer(m[key]) }

func str(f fields, key string) string { return f.Str(key) }

// num reads a whole-number field (a count, a duration) in any of the forms
// validation accepts, json.Number included: the form records come in.
func num(f fields, key string) (float64, bool) {
	// Not manifest.Integer(f.Value(key)): a stored event would build a
	// json.Number, two allocations, for each count and duration.
	n, ok := f.Integer(key)
	return float64(n), ok
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// add folds one record into the aggregator.
func (a *aggregator) add(r *provision.Record) {
	a.addEvent(r.Event.Type, r.Event.Time, r.ReceivedAt, r.InstallationID, r.Country, fieldMap(r.Event.Fields))
}

// addStored folds one stored event into the aggregator, as add folds the
// record the log would build from it (provision.NewRecord).
func (a *aggregator) addStored(h *batchcodec.Header, v *batchcodec.EventView) {
	a.addEvent(v.Type, v.Time, h.ReceivedAt, h.InstallationID, v.Str(provision.ItemCountry), v)
}

// addEvent folds one event: its type, time, the time it was received, its
// installation, the country of its location and its fields.
func (a *aggregator) addEvent(typ string, t, received time.Time, installation, country string, f fields) {
	c := contribution{a: a, day: a.day(t, received), h: a.installHash(installation), weight: 1}

	// Every accepted event shows the installation was active that day. The
	// location is declared for task events only, so no other view is cut
	// by country.
	c.to(ViewActive, "all", "all")

	switch typ {
	case "software":
		for _, d := range [][2]string{{"product", "software.name"}, {"version", "software.version"}, {"edition", "software.edition"}, {"localization", "software.localization"}, {"software.type", "software.type"}} {
			if v := str(f, d[1]); v != "" {
				c.to(ViewActive, d[0], v)
			}
		}
	case "user_count":
		for _, d := range [][2]string{{"product", "software.name"}, {"version", "software.version"}, {"os.version", "os.version"}} {
			if v := str(f, d[1]); v != "" {
				c.to(ViewActive, d[0], v)
			}
		}
	case "os":
		for _, d := range []string{"os.type", "os.version", "os.edition"} {
			if v := str(f, d); v != "" {
				c.to(ViewActive, d, v)
			}
		}
		c.to(ViewOSReporting, "all", "all")
		if list, ok := f.Value("os.update_packages").([]any); ok {
			seen := make(map[string]bool, len(list))
			for _, p := range list {
				if s, ok := p.(string); ok && s != "" && !seen[s] {
					seen[s] = true
					c.to(ViewUpdate, "package", s)
				}
			}
		}
	case "license":
		if v := str(f, "license.provider_site"); v != "" {
			c.to(ViewLicense, "site", v)
		}
	case "ui_error":
		c.weight = a.capWeight(f)
		c.to(ViewUIError, "type", str(f, "error.type"), "code", str(f, "error.code"), "control", orUnknown(str(f, "ui.control_id")))
	case "task":
		a.addTask(&c, f, orUnknown(country))
	case "tls_connection":
		c.weight = a.capWeight(f)
		if id, ok := a.tlsIssuer(f); ok {
			c.to(ViewTLSIssuer, "spki", id)
		} else {
			a.skipped++
		}
	case "file_signature":
		c.weight = a.capWeight(f)
		thumb := strings.ToLower(str(f, "file.thumbprint_sha1"))
		if thumb == "" {
			a.skipped++
			return
		}
		a.fileSigner(thumb, f)
		c.to(ViewFileSigner, "thumbprint", thumb)
	}
}

func (a *aggregator) capWeight(f fields) int64 {
	n, ok := num(f, "event.count")
	if !ok || n < 1 {
		return 1
	}
	return int64(math.Min(n, float64(a.weightCap)))
}

func (a *aggregator) addTask(c *contribution, f fields, country string) {
	typ := orUnknown(str(f, "task.type"))
	status := str(f, "task.status")
	c.failed = status == "failure"
	if d, ok := num(f, "task.duration"); ok && d >= 0 {
		c.duration, c.hasDur = d, true
	}
	version := orUnknown(str(f, "software.version"))
	c.to(ViewTask, "type", typ, "version", version)
	c.to(ViewTask, "type", typ, "country", country)
	campaign := str(f, "task.campaign_id")
	if campaign != "" {
		c.to(ViewTask, "type", typ, "campaign", campaign)
	}
	if status != "failure" {
		return
	}
	c.hasDur = false
	et, ec := orUnknown(str(f, "task.error_type")), orUnknown(str(f, "task.error_code"))
	c.to(ViewTaskError, "type", typ, "version", version, "error_type", et, "error_code", ec)
	if campaign != "" {
		c.to(ViewTaskError, "type", typ, "campaign", campaign, "error_type", et, "error_code", ec)
	}
}

// maxCertCache bounds the parsed-certificate cache of one aggregator.
const maxCertCache = 4096

func (a *aggregator) parse(b64 string) *x509.Certificate {
	if c, ok := a.parsed[b64]; ok {
		return c
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		cert = nil
	}
	if len(a.parsed) >= maxCertCache {
		clear(a.parsed)
	}
	a.parsed[b64] = cert
	return cert
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// tlsIssuer identifies who vouched for the certificate that established
// the connection: the site's CA, or the root an intercepting proxy signs
// with. Only that certificate is sent (the terms name it, not the chain), so
// the issuer is known by its name, unless the certificate is its own issuer.
func (a *aggregator) tlsIssuer(f fields) (string, bool) {
	leaf := a.parse(str(f, "tls.certificate"))
	if leaf == nil {
		return "", false
	}
	if !selfSigned(leaf) {
		// Only the issuer's name is known: identify it by that name, never
		// by the site's own certificate.
		id := IssuerNameID(leaf.RawIssuer)
		if _, ok := a.noted(ViewTLSIssuer, id); !ok {
			a.noteCert(Cert{View: ViewTLSIssuer, ID: id, Subject: leaf.Issuer.String()})
		}
		return id, true
	}
	id := certs.SPKISHA256Hex(leaf)
	if c, ok := a.noted(ViewTLSIssuer, id); !ok || c.DER == nil {
		a.noteCert(certOf(ViewTLSIssuer, id, leaf))
	}
	return id, true
}

// IssuerNameID is the id of a TLS issuer known only by its name: "dn:"
// and the SHA-256 of its DER-encoded distinguished name, which equals the
// issuer's own RawSubject.
func IssuerNameID(rawName []byte) string {
	sum := sha256.Sum256(rawName)
	return "dn:" + hex.EncodeToString(sum[:])
}

func (a *aggregator) fileSigner(thumb string, f fields) {
	if c := a.parse(str(f, "file.certificate")); c != nil {
		if old, ok := a.noted(ViewFileSigner, thumb); !ok || old.DER == nil {
			a.noteCert(certOf(ViewFileSigner, thumb, c))
		}
		return
	}
	if _, ok := a.noted(ViewFileSigner, thumb); !ok {
		a.noteCert(Cert{View: ViewFileSigner, ID: thumb})
	}
}

func certOf(view, id string, c *x509.Certificate) Cert {
	return Cert{
		View: view, ID: id,
		Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		SelfSigned: selfSigned(c), DER: c.Raw,
	}
}

// noted returns the certificate noted as view and id, if any. The callers
// build a Cert only when noteCert would store something new: one whose
// DER is known, or one named only and noted already, stays as it is, and
// formatting a certificate's names cost more than the rest of its event.
func (a *aggregator) noted(view, id string) (Cert, bool) {
	b := append(a.certKey[:0], view...)
	b = append(b, '/')
	b = append(b, id...)
	a.certKey = b
	c, ok := a.certs[string(b)]
	return c, ok
}

func (a *aggregator) noteCert(c Cert) {
	k := c.View + "/" + c.ID
	if old, ok := a.certs[k]; ok && old.DER != nil {
		return
	}
	a.certs[k] = c
}
