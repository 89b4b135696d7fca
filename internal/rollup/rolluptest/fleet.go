package rolluptest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"time"

	provision "github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/rollup"
)

// FleetConfig sizes a generated fleet.
type FleetConfig struct {
	Installations int
	Days          int
	Start         time.Time // first day, UTC midnight
	Seed          uint64
}

// Planted names the incidents and look-alikes a fleet carries, so tests
// can check that the first are flagged and the second are not.
type Planted struct {
	// TLS issuers are known by name (rollup.IssuerNameID): only the
	// certificate that established the connection is sent, not its chain.
	InterceptionRoot string // a private root intercepting TLS on ever more machines (flag)
	CorporateProxy   string // a private root on a fixed set of machines (no spreading flag)
	ExpiredRoot      string // a private root that expired early in the period (its expiry is not known from the leaf: no flag)
	PublicIssuer     string // the public intermediate most sites use (no flag)
	StolenSigner     string // SHA-1 thumbprint of a signer that appears on many machines at once (flag)
	RenewedSigner    string // thumbprint of a signer that rolls out slowly (no flag)
	VendorSigner     string // thumbprint of the everyday signer (no flag)
	FailingCampaign  string // upgrade campaign with a high failure rate (flag)
	GoodCampaign     string // upgrade campaign that goes well (no flag)
	RareVersion      string // version on fewer than 10 machines (suppressed)
	RareErrorCode    string // ui error code on fewer than 10 machines (suppressed)
	RareLicenseSite  string // licence site of fewer than 10 machines (suppressed)
}

// Fleet generates realistic submissions from many installations.
type Fleet struct {
	FleetConfig
	Planted     Planted
	PublicRoots *x509.CertPool // the roots a report treats as public
	PublicPEM   []byte         // the same roots, PEM-encoded

	pubLeaves []*x509.Certificate
	evilLeaf  *x509.Certificate
	corpLeaf  *x509.Certificate
	oldLeaf   *x509.Certificate
	vendor    *x509.Certificate
	stolen    *x509.Certificate
	renewed   *x509.Certificate
	b64       map[*x509.Certificate]string
}

type issued struct {
	cert *x509.Certificate
	key  ed25519.PrivateKey
}

// issue makes a certificate whose key and serial follow from the fleet's
// seed and the subject, and Ed25519 signs deterministically: the same
// fleet has the same certificates in every run, so the reports built
// from it can be compared byte for byte with golden files.
func issue(seed uint64, subject string, ca bool, notBefore, notAfter time.Time, parent *issued, codeSigning bool) (*issued, error) {
	h := sha256.Sum256(fmt.Appendf(nil, "%d/%s/%d", seed, subject, notBefore.Unix()))
	key := ed25519.NewKeyFromSeed(h[:])
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(h[:8]),
		Subject:               pkix.Name{CommonName: subject, Organization: []string{subject + " Org"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  ca,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if codeSigning {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	} else if !ca {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{subject}
	}
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(nil, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &issued{cert: c, key: key}, nil
}

// Thumbprint is the lowercase hex SHA-1 of c, as Windows shows it.
func Thumbprint(c *x509.Certificate) string {
	s := sha1.Sum(c.Raw)
	return hex.EncodeToString(s[:])
}

// NewFleet makes the certificates a fleet needs.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	if cfg.Installations < 100 || cfg.Days < 21 {
		return nil, fmt.Errorf("rolluptest: a fleet needs at least 100 installations and 21 days")
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	}
	f := &Fleet{FleetConfig: cfg, b64: make(map[*x509.Certificate]string)}
	long := cfg.Start.AddDate(-3, 0, 0)
	far := cfg.Start.AddDate(5, 0, 0)
	day := func(d int) time.Time { return cfg.Start.AddDate(0, 0, d) }

	var err error
	must := func(i *issued, e error) *issued {
		if e != nil && err == nil {
			err = e
		}
		return i
	}
	pubRoot := must(issue(cfg.Seed, "Public Trust Root CA", true, long, far, nil, false))
	if err != nil {
		return nil, err
	}
	pubInter := must(issue(cfg.Seed, "Public Trust TLS CA 1", true, long, far, pubRoot, false))
	codeCA := must(issue(cfg.Seed, "Public Code Signing CA", true, long, far, pubRoot, false))
	evil := must(issue(cfg.Seed, "System Security Filter Root", true, day(cfg.Days-12), far, nil, false))
	corp := must(issue(cfg.Seed, "Example Corp Inspection Root", true, long, far, nil, false))
	old := must(issue(cfg.Seed, "Legacy Appliance Root", true, long, day(3), nil, false))
	if err != nil {
		return nil, err
	}
	for i := range 5 {
		f.pubLeaves = append(f.pubLeaves, must(issue(cfg.Seed, fmt.Sprintf("site%d.example.org", i), false, long, far, pubInter, false)).cert)
	}
	f.evilLeaf = must(issue(cfg.Seed, "site0.example.org", false, day(cfg.Days-12), far, evil, false)).cert
	f.corpLeaf = must(issue(cfg.Seed, "site1.example.org", false, long, far, corp, false)).cert
	f.oldLeaf = must(issue(cfg.Seed, "device.example.net", false, long, day(3), old, false)).cert
	f.vendor = must(issue(cfg.Seed, "Example Software Vendor", false, long, far, codeCA, true)).cert
	f.stolen = must(issue(cfg.Seed, "Trusted Drivers Ltd", false, long, far, codeCA, true)).cert
	f.renewed = must(issue(cfg.Seed, "Example Software Vendor 2026", false, day(8), far, codeCA, true)).cert
	if err != nil {
		return nil, err
	}
	f.PublicRoots = x509.NewCertPool()
	f.PublicRoots.AddCert(pubRoot.cert)
	f.PublicPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pubRoot.cert.Raw})
	f.Planted = Planted{
		InterceptionRoot: rollup.IssuerNameID(evil.cert.RawSubject),
		CorporateProxy:   rollup.IssuerNameID(corp.cert.RawSubject),
		ExpiredRoot:      rollup.IssuerNameID(old.cert.RawSubject),
		PublicIssuer:     rollup.IssuerNameID(pubInter.cert.RawSubject),
		StolenSigner:     Thumbprint(f.stolen),
		RenewedSigner:    Thumbprint(f.renewed),
		VendorSigner:     Thumbprint(f.vendor),
		FailingCampaign:  "upgrade-2026-10-b",
		GoodCampaign:     "upgrade-2026-10-a",
		RareVersion:      "6.0.0-beta",
		RareErrorCode:    "C7",
		RareLicenseSite:  "https://tiny-reseller.example",
	}
	return f, nil
}

func (f *Fleet) enc(c *x509.Certificate) string {
	if s, ok := f.b64[c]; ok {
		return s
	}
	s := base64.StdEncoding.EncodeToString(c.Raw)
	f.b64[c] = s
	return s
}

// InstallationID is the id of installation i.
func InstallationID(i int) string {
	return fmt.Sprintf("%08x-7a1c-4e0b-9c3d-%012x", i, i*7919)
}

var countries = []string{"DE", "DE", "FR", "FR", "GB", "BR", "US", "IT", "ES", "PL"}

// interceptedOn is how many installations the spreading root reaches on day d.
func (f *Fleet) interceptedOn(d int) int {
	start := f.Days - 10
	if d < start {
		return 0
	}
	return min(f.Installations/2, int(6*math.Pow(1.5, float64(d-start))))
}

// Fill appends the whole fleet's submissions to log, one batch per
// installation and day, in time order.
func (f *Fleet) Fill(ctx context.Context, log provision.Log) error {
	rng := rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
	n := f.Installations
	// The location goes where ingest would put it.
	m := manifest.Reference()
	for d := range f.Days {
		dayStart := f.Start.AddDate(0, 0, d)
		for i := range n {
			if rng.Float64() > 0.9 {
				continue // not used that day
			}
			at := dayStart.Add(time.Duration(i%24)*time.Hour + time.Duration(i%60)*time.Minute)
			evs := f.eventsOf(i, d, at, rng)
			ingest.AddLocation(m, provision.RegionEU, geo.Location{Country: f.country(i)}, evs)
			sub := &provision.Submission{
				BatchID:        fmt.Sprintf("b-%d-%d", i, d),
				InstallationID: InstallationID(i),
				Region:         provision.RegionEU,
				ReceivedAt:     at.Add(time.Minute),
				Events:         evs,
				Response:       []byte(`{}`),
			}
			if _, _, err := log.Append(ctx, sub); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *Fleet) country(i int) string {
	if i%50 == 49 {
		return "LU" // a small country: its cells stay below k
	}
	return countries[i%len(countries)]
}

func (f *Fleet) version(i int, d int) string {
	switch {
	case i < 4:
		return f.Planted.RareVersion
	case i%5 == 1 && d >= 12: // upgraded (or tried to) by the failing campaign
		return "5.15.0"
	case i%7 == 0 && d >= 3:
		return "5.15.0"
	default:
		return "5.14.0"
	}
}

func (f *Fleet) eventsOf(i, d int, at time.Time, rng *rand.Rand) []provision.Event {
	seq := 0
	ev := func(typ string, fields map[string]any) provision.Event {
		seq++
		return provision.Event{ID: fmt.Sprintf("e-%d-%d-%d", i, d, seq), Type: typ, Time: at, Fields: fields}
	}
	version := f.version(i, d)
	osVersion := []string{"11 23H2", "11 24H2", "10 22H2"}[i%3]
	packages := []any{"KB5034441"}
	if d >= 10 && i%10 < (d-8)/2 {
		packages = append(packages, "KB5036893")
	}
	edition := "free"
	if i%3 == 0 {
		edition = "premium"
	}
	evs := []provision.Event{
		ev("user_count", map[string]any{"software.name": "Secure Connection", "software.version": version, "os.version": osVersion}),
		ev("software", map[string]any{"software.type": "vpn", "software.name": "Secure Connection", "software.version": version, "software.edition": edition, "software.localization": []string{"en-GB", "de-DE", "fr-FR", "pt-BR"}[i%4]}),
		ev("os", map[string]any{"os.type": "windows", "os.version": osVersion, "os.edition": []string{"Home", "Pro"}[i%2], "os.update_packages": packages}),
	}
	if d%7 == i%7 {
		site := "https://shop.example.com"
		if i%3 == 0 {
			site = "https://partner.example.net"
		}
		if i >= 4 && i < 7 {
			site = f.Planted.RareLicenseSite
		}
		evs = append(evs, ev("license", map[string]any{"license.provider_site": site}))
	}
	// Secure connections: everyone visits public sites; some are intercepted.
	leaf := f.pubLeaves[(i+d)%len(f.pubLeaves)]
	evs = append(evs, ev("tls_connection", map[string]any{"tls.certificate": f.enc(leaf), "tls.spki_sha256": certs.SPKISHA256Hex(leaf), "event.count": float64(20 + rng.IntN(50))}))
	if lo := n2(f.Installations); i >= lo && i < lo+f.interceptedOn(d) {
		evs = append(evs, ev("tls_connection", map[string]any{"tls.certificate": f.enc(f.evilLeaf), "tls.spki_sha256": certs.SPKISHA256Hex(f.evilLeaf), "event.count": float64(5 + rng.IntN(10))}))
	}
	if i >= 10 && i < 50 {
		evs = append(evs, ev("tls_connection", map[string]any{"tls.certificate": f.enc(f.corpLeaf), "tls.spki_sha256": certs.SPKISHA256Hex(f.corpLeaf), "event.count": float64(10)}))
	}
	if i >= 50 && i < 65 {
		evs = append(evs, ev("tls_connection", map[string]any{"tls.certificate": f.enc(f.oldLeaf), "tls.spki_sha256": certs.SPKISHA256Hex(f.oldLeaf), "event.count": float64(3)}))
	}
	// Scanned files.
	sig := func(c *x509.Certificate) provision.Event {
		return ev("file_signature", map[string]any{"file.certificate": f.enc(c), "file.spki_sha256": certs.SPKISHA256Hex(c), "file.thumbprint_sha1": Thumbprint(c), "event.count": float64(1 + rng.IntN(30))})
	}
	evs = append(evs, sig(f.vendor))
	if d >= f.Days-5 && i%3 == 0 {
		evs = append(evs, sig(f.stolen))
	}
	if d >= 10 && i >= 100 && i < 100+2*(d-10) {
		evs = append(evs, sig(f.renewed))
	}
	// Errors while in use.
	if i%4 == 0 && d%3 == 0 {
		evs = append(evs, ev("ui_error", map[string]any{"error.type": "connection_failed", "error.code": "E42", "ui.control_id": "button.connect", "event.count": float64(1 + rng.IntN(4))}))
	}
	if i >= 4 && i < 7 && d == 5 {
		evs = append(evs, ev("ui_error", map[string]any{"error.type": "crash", "error.code": f.Planted.RareErrorCode, "ui.control_id": "menu.export", "event.count": float64(1)}))
	}
	// Upgrade campaigns: each targeted installation tries once.
	task := func(campaign string, fail bool) provision.Event {
		fields := map[string]any{"task.type": "upgrade", "task.status": "success", "task.duration": float64(40000 + rng.IntN(60000)), "task.campaign_id": campaign, "software.version": "5.15.0", "os.type": "windows", "os.version": osVersion}
		if fail {
			fields["task.status"] = "failure"
			fields["task.error_type"] = "file_locked"
			fields["task.error_code"] = "0x80070020"
			fields["task.duration"] = float64(200000 + rng.IntN(200000))
		}
		return ev("task", fields)
	}
	if i%7 == 0 && d == 3+i%5 {
		evs = append(evs, task(f.Planted.GoodCampaign, rng.Float64() < 0.03))
	}
	if i%5 == 1 && d == 12+i%4 {
		evs = append(evs, task(f.Planted.FailingCampaign, rng.Float64() < 0.45))
	}
	// The small country's installations update daily: task events are the
	// only ones that carry a location, so this is its country figure.
	if f.country(i) == "LU" {
		evs = append(evs, ev("task", map[string]any{"task.type": "update", "task.status": "success", "task.duration": float64(30000), "software.version": version, "os.type": "windows", "os.version": osVersion}))
	}
	return evs
}

func n2(n int) int { return n / 2 }
