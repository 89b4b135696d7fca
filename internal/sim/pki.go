package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"
	"time"

	"github.com/provisionhq/provision/internal/certs"
)

// Cert is one generated certificate with the encodings the events carry.
type Cert struct {
	Name       string // the subject common name
	DER        []byte
	Base64     string // standard base64 of DER, as events carry it
	SPKISHA256 string // lowercase hex SHA-256 of the SubjectPublicKeyInfo
	SHA1       string // lowercase hex thumbprint as Windows shows it
	SHA256     string // lowercase hex SHA-256 thumbprint
	Cert       *x509.Certificate
	key        ed25519.PrivateKey
}

// Site is a TLS server of the simulated internet: its certificate and the
// intermediate that issued it.
type Site struct {
	Host         string
	Leaf         *Cert
	Intermediate *Cert
}

// Proxy is a TLS-intercepting root (an enterprise inspection proxy or the
// planted malicious one) and the certificates it forges for sites.
type Proxy struct {
	Root   *Cert
	Leaves []*Cert // Leaves[i] impersonates Sites[i] for i < len(Leaves)
}

// PKI holds every certificate the fleet can see. All keys are Ed25519 keys
// derived from the seed and names, and Ed25519 signatures are deterministic,
// so the same seed yields byte-identical certificates.
type PKI struct {
	PublicRoots   []*Cert
	Intermediates []*Cert
	Sites         []*Site // in order of popularity
	Expired       *Site   // an expired certificate still served by a site
	Interception  *Proxy  // the planted malicious interception root
	Enterprise    []*Proxy
	CodeSigningCA []*Cert
	Signers       []*Cert // common code signers, in order of prevalence
	Stolen        *Cert   // the planted stolen code-signing certificate
}

// Numbers of generated certificates.
const (
	siteCount        = 120
	interceptedSites = 40 // the malicious proxy forges the most popular ones
	enterpriseSites  = 60
)

type pkiBuilder struct {
	seed   uint64
	start  time.Time
	serial uint64
}

func (b *pkiBuilder) key(name string) ed25519.PrivateKey {
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], b.seed)
	sum := sha256.Sum256(append(buf[:], name...))
	return ed25519.NewKeyFromSeed(sum[:])
}

// issue creates a certificate for name signed by parent (self-signed when
// parent is nil), valid from notBefore for validity.
func (b *pkiBuilder) issue(name, org string, parent *Cert, ca bool, usage x509.ExtKeyUsage, host string, notBefore time.Time, validity time.Duration) *Cert {
	b.serial++
	key := b.key(name + "|" + host)
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetUint64(b.serial<<16 | b.seed&0xffff),
		Subject:               pkix.Name{CommonName: name, Organization: []string{org}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(validity),
		BasicConstraintsValid: true,
		IsCA:                  ca,
	}
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	}
	if host != "" {
		tmpl.DNSNames = []string{host}
	}
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.Cert, parent.key
	}
	// Ed25519 signing reads no randomness; the reader only backs fields
	// the template leaves empty, and it is seeded too.
	r := rand.NewChaCha8(sha256.Sum256([]byte(fmt.Sprint(b.seed, name, host))))
	der, err := x509.CreateCertificate(r, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		panic(fmt.Sprintf("sim: generating certificate %q: %v", name, err)) // only a programming error gets here
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(fmt.Sprintf("sim: parsing generated certificate %q: %v", name, err))
	}
	return &Cert{
		Name: name, DER: der, Base64: base64.StdEncoding.EncodeToString(der),
		SPKISHA256: certs.SPKISHA256Hex(c), SHA1: certs.ThumbprintSHA1(c), SHA256: certs.ThumbprintSHA256(c),
		Cert: c, key: key,
	}
}

const (
	day  = 24 * time.Hour
	year = 365 * day
)

// newPKI generates the certificates for a period that begins at start and
// lasts days; the malicious root is issued shortly before it starts to
// spread at spreadDay.
func newPKI(seed uint64, start time.Time, spreadDay int) *PKI {
	b := &pkiBuilder{seed: seed, start: start}
	p := &PKI{}
	tlsUsage := x509.ExtKeyUsageServerAuth
	roots := []struct{ name, org string }{
		{"Sim Trust Global Root R1", "Sim Trust"},
		{"Northbridge Root CA 2019", "Northbridge Certification"},
		{"Meridian Global Root G2", "Meridian PKI"},
		{"Aurora Public Root X1", "Aurora Security Research Group"},
	}
	for i, r := range roots {
		root := b.issue(r.name, r.org, nil, true, 0, "", start.Add(-time.Duration(6+i)*year), 25*year)
		p.PublicRoots = append(p.PublicRoots, root)
		for j := 1; j <= 2; j++ {
			in := b.issue(fmt.Sprintf("%s TLS CA %d", r.org, j), r.org, root, true, 0, "", start.Add(-2*year), 5*year)
			p.Intermediates = append(p.Intermediates, in)
		}
	}
	// Sites: most popular first; the chain mix favours the biggest CAs the
	// way the real web does.
	for i := range siteCount {
		host := siteHost(i)
		in := p.Intermediates[(i*7+i/3)%len(p.Intermediates)]
		if i%3 == 0 {
			in = p.Intermediates[i%2] // Sim Trust issues a third of the web
		}
		issued := start.Add(-time.Duration(10+i%80) * day)
		leaf := b.issue(host, "", in, false, tlsUsage, host, issued, 90*day)
		p.Sites = append(p.Sites, &Site{Host: host, Leaf: leaf, Intermediate: in})
	}
	legacy := "legacy-portal.example.org"
	in := p.Intermediates[3]
	p.Expired = &Site{Host: legacy, Intermediate: in,
		Leaf: b.issue(legacy, "", in, false, tlsUsage, legacy, start.Add(-400*day), 365*day)}

	p.Interception = b.proxy("Secure Web Filter Root CA", "Secure Web Filter", start.Add(time.Duration(spreadDay-2)*day), interceptedSites, p.Sites)
	for _, e := range []struct{ name, org string }{
		{"Contoso Corporate Proxy CA", "Contoso Ltd"},
		{"Fabrikam TLS Inspection Root", "Fabrikam Inc"},
		{"Globex Web Gateway CA", "Globex Corporation"},
	} {
		p.Enterprise = append(p.Enterprise, b.proxy(e.name, e.org, start.Add(-3*year), enterpriseSites, p.Sites))
	}

	codeUsage := x509.ExtKeyUsageCodeSigning
	p.CodeSigningCA = []*Cert{
		b.issue("Sim Trust Code Signing CA", "Sim Trust", p.PublicRoots[0], true, 0, "", start.Add(-3*year), 8*year),
		b.issue("Meridian Code Signing CA G3", "Meridian PKI", p.PublicRoots[2], true, 0, "", start.Add(-3*year), 8*year),
	}
	for i, name := range []string{
		"Contoso Software Ltd", "Northwind Traders Inc", "Adatum Corporation", "Litware Inc",
		"Proseware Inc", "Tailspin Toys", "Wide World Importers", "Fourth Coffee", "Trey Research", "Lucerne Publishing",
	} {
		ca := p.CodeSigningCA[i%2]
		p.Signers = append(p.Signers, b.issue(name, name, ca, false, codeUsage, "", start.Add(-time.Duration(100+i*30)*day), 3*year))
	}
	p.Stolen = b.issue("Woodgrove Utilities Ltd", "Woodgrove Utilities Ltd", p.CodeSigningCA[1], false, codeUsage, "", start.Add(-200*day), 3*year)
	return p
}

func (b *pkiBuilder) proxy(name, org string, notBefore time.Time, n int, sites []*Site) *Proxy {
	root := b.issue(name, org, nil, true, 0, "", notBefore, 10*year)
	px := &Proxy{Root: root}
	for _, s := range sites[:n] {
		px.Leaves = append(px.Leaves, b.issue(s.Host, org, root, false, x509.ExtKeyUsageServerAuth, s.Host, notBefore.Add(time.Hour), 2*year))
	}
	return px
}

var siteWords = []string{"mail", "news", "shop", "cloud", "video", "maps", "docs", "bank", "social", "search", "music", "travel", "games", "weather", "sport"}
var siteTLDs = []string{"example.com", "example.net", "example.org"}

func siteHost(i int) string {
	w := siteWords[i%len(siteWords)]
	t := siteTLDs[(i/len(siteWords))%len(siteTLDs)]
	if n := i / (len(siteWords) * len(siteTLDs)); n > 0 {
		return fmt.Sprintf("%s%d.%s", w, n, t)
	}
	return w + "." + t
}
