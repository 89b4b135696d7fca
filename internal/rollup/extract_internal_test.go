package rollup

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/provisionhq/provision"
)

// TestAggregatorCaches checks that the day and hash the aggregator keeps
// from the previous record are those Day and a fresh hash give.
func TestAggregatorCaches(t *testing.T) {
	a := newAggregator([]byte("key"), 0)
	fresh := newAggregator([]byte("key"), 0)
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	recs := []provision.Record{
		{InstallationID: "a", ReceivedAt: at("2026-11-30T10:00:00Z"), Event: provision.Event{Time: at("2026-11-29T23:59:59.999Z")}},
		{InstallationID: "a", ReceivedAt: at("2026-11-30T10:00:00Z"), Event: provision.Event{Time: at("2026-11-30T00:00:00Z")}},
		{InstallationID: "a", ReceivedAt: at("2026-11-30T10:00:00Z")},
		{InstallationID: "b", Event: provision.Event{Time: at("2026-11-30T23:00:00-05:00")}},
		{InstallationID: "b", Event: provision.Event{Time: at("1969-12-31T23:59:59Z")}},
		{InstallationID: "a", Event: provision.Event{Time: at("1969-12-31T00:00:00Z")}},
		{InstallationID: "a", Event: provision.Event{Time: at("1970-01-01T00:00:00Z")}},
	}
	for i := range recs {
		r := &recs[i]
		if got, want := a.day(r.Event.Time, r.ReceivedAt), Day(r); got != want {
			t.Errorf("record %d: day %s, want %s", i, got, want)
		}
		fresh.hashed = false
		if got, want := a.installHash(r.InstallationID), fresh.installHash(r.InstallationID); got != want {
			t.Errorf("record %d: hash %x, want %x", i, got, want)
		}
	}
}

// TestDimsEscapes checks the fast path of Dims against url.QueryEscape for
// every byte.
func TestDimsEscapes(t *testing.T) {
	for c := range 256 {
		v := "a" + string(rune(c)) + "b"
		if c >= 0x80 {
			v = "a" + string([]byte{byte(c)}) + "b"
		}
		lead := v[1:] // the byte first, before any byte copied whole
		want := "k=" + url.QueryEscape(v) + "&" + url.QueryEscape(lead) + "=v"
		if got := Dims("k", v, lead, "v"); got != want {
			t.Errorf("byte %#x: Dims = %q, want %q", c, got, want)
		}
	}
	if got := Dims(); got != "" {
		t.Errorf("Dims() = %q", got)
	}
}

// A certificate noted by its name alone takes the certificate once an event
// sends it, and is never replaced by its name after that, whatever the
// order of the events of one fold.
func TestAggregatorKeepsCertificatesOnceSent(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Vendor"},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(der)
	named := fieldMap{"file.thumbprint_sha1": "AB"}
	sent := fieldMap{"file.thumbprint_sha1": "AB", "file.certificate": b64}
	tls := fieldMap{"tls.certificate": b64}
	for _, order := range [][]fieldMap{{named, sent, named}, {sent, named, sent}, {named, named}} {
		a := newAggregator([]byte("k"), 0)
		for _, f := range order {
			a.addEvent("file_signature", time.Time{}, time.Unix(0, 0), "i", "", f)
			a.addEvent("tls_connection", time.Time{}, time.Unix(0, 0), "i", "", tls)
		}
		c := a.certs[ViewFileSigner+"/ab"]
		wantDER := order[1]["file.certificate"] != nil || order[0]["file.certificate"] != nil
		if (c.DER != nil) != wantDER || c.ID != "ab" || wantDER && c.Subject != "CN=Vendor" {
			t.Errorf("file signer after %d events: %+v", len(order), c)
		}
		if len(a.certs) != 2 {
			t.Errorf("%d certificates noted, want the signer and the TLS issuer", len(a.certs))
		}
		for k, c := range a.certs {
			if c.View == ViewTLSIssuer && (c.DER == nil || !c.SelfSigned || k != c.View+"/"+c.ID) {
				t.Errorf("TLS issuer %s: %+v", k, c)
			}
		}
	}
}
