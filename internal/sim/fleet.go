// Package sim is a fleet simulator: a deterministic model of many
// installations of the reference product over days of simulated time, the
// events each would send, and the ground truth to compare reports with.
//
// The model is fixed by a seed. Product versions roll out through upgrade
// campaigns (one of them failing), operating systems receive updates, UI
// errors follow a long tail, TLS scans mostly see public CA chains, a few
// enterprise proxies inspect traffic, a planted interception root spreads
// over days, and a planted stolen code-signing certificate appears suddenly.
package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Config says how big the fleet is and which world it lives in.
type Config struct {
	Installs int       // installations, at least 1
	Days     int       // simulated days, at least 1
	Seed     uint64    // everything follows from it
	Start    time.Time // midnight UTC of the first simulated day
}

// DefaultStart is the first day of a period of days that ends yesterday,
// so that no simulated event lies in the future.
func DefaultStart(now time.Time, days int) time.Time {
	return now.UTC().Truncate(day).Add(-time.Duration(days) * day)
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Installs < 1 || c.Installs > 10_000_000:
		return fmt.Errorf("installs: %d is outside 1 to 10000000", c.Installs)
	case c.Days < 1 || c.Days > 400:
		return fmt.Errorf("days: %d is outside 1 to 400", c.Days)
	case c.Start.IsZero():
		return errors.New("start: missing")
	case !c.Start.Equal(c.Start.UTC().Truncate(day)):
		return errors.New("start: must be midnight UTC")
	}
	return nil
}

// Installation is one simulated installation of the product.
type Installation struct {
	Index       int
	ID          string // the random installation id, a UUIDv4
	Region      string
	Country     string // ISO 3166-1 alpha-2
	Subdivision string
	Addr        netip.Addr // client address as the server's proxy header gives it
	Locale      string
	Edition     string
	Shop        string
	OS          *osRelease
	OSEdition   string
	Arch        string
	Joined      int     // first day the installation exists (its install task)
	Removed     int     // day of its removal task; Days when never removed
	Activity    float64 // probability of being in use on a given day
	Proxy       int     // index of its enterprise proxy, -1 for none
	Intercepted int     // day from which the malicious root intercepts, -1 never
	StolenFrom  int     // day from which it runs files signed with the stolen certificate, -1 never

	version     int   // index into releases
	updateLag   int   // days between an OS update's publication and its installation
	offers      []int // per campaign: day its offer reaches this installation
	failedTries []int // per campaign: failed attempts so far
	rng         *rand.Rand
}

// Fleet is the whole simulated world for one Config.
type Fleet struct {
	Config
	Installations []*Installation
	PKI           *PKI
	SpreadDay     int // day the planted interception root appears
	StolenDay     int // day the planted stolen signer appears at scale
	Countries     []country

	errorCodes  []string
	controls    []string
	siteDist    *tail
	errorDist   *tail
	controlDist *tail
	signerDist  *tail
}

// New builds the fleet for cfg. The same Config always gives the same
// fleet, the same events and the same certificates.
func New(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	f := &Fleet{
		Config:    cfg,
		SpreadDay: max(1, cfg.Days/3),
		StolenDay: max(1, cfg.Days*2/3),
		Countries: countries,
	}
	f.PKI = newPKI(cfg.Seed, cfg.Start, f.SpreadDay)
	for i := range errorCodeCount {
		f.errorCodes = append(f.errorCodes, fmt.Sprintf("E%04X", 0x1000+i*37))
	}
	for i := range controlCount {
		s := controlScreens[i%len(controlScreens)]
		w := controlWidgets[(i/len(controlScreens))%len(controlWidgets)]
		f.controls = append(f.controls, fmt.Sprintf("%s.%s_%d", s, w, i/(len(controlScreens)*len(controlWidgets))))
	}
	f.siteDist = newTail(len(f.PKI.Sites), 1.1)
	f.errorDist = newTail(errorCodeCount, 1.2)
	f.controlDist = newTail(controlCount, 1.05)
	f.signerDist = newTail(len(f.PKI.Signers), 0.9)

	countryW := make([]float64, len(countries))
	for i, c := range countries {
		countryW[i] = c.Weight
	}
	osW := make([]float64, len(osReleases))
	for i, o := range osReleases {
		osW[i] = o.Weight
	}
	// The interception root spreads roughly exponentially until it reaches
	// about a sixth of the fleet; enterprise proxies sit on business
	// machines from the start and do not grow.
	infectedShare := 1.0 / 6
	growthDays := max(2.0, float64(cfg.Days-f.SpreadDay)*0.8)
	for i := range cfg.Installs {
		in := &Installation{Index: i, Proxy: -1, Intercepted: -1, StolenFrom: -1}
		in.ID = uuid4(r)
		c := &countries[pick(r, countryW)]
		in.Region, in.Country = c.Region, c.Code
		sub := r.IntN(len(c.Subdivisions))
		in.Subdivision = c.Subdivisions[sub]
		in.Addr = countryAddr(countryIndex(c.Code), sub, r)
		in.Locale = c.Locales[r.IntN(len(c.Locales))]
		in.Edition = pickW(r, editions)
		if r.Float64() < 0.6 {
			in.Shop = c.Shops[r.IntN(len(c.Shops))]
		} else {
			in.Shop = pickW(r, globalShops)
		}
		in.OS = &osReleases[pick(r, osW)]
		in.OSEdition = pickW(r, in.OS.Editions)
		in.Arch = pickW(r, in.OS.Arch)
		in.updateLag = int(r.ExpFloat64() * 3)
		if r.Float64() < 0.7 {
			in.Joined = 0
		} else {
			in.Joined = r.IntN(cfg.Days)
		}
		in.Removed = cfg.Days
		if r.Float64() < 0.04 {
			in.Removed = in.Joined + 1 + r.IntN(cfg.Days)
			in.Removed = min(in.Removed, cfg.Days)
		}
		in.Activity = 0.35 + 0.6*r.Float64()
		if in.Edition == "business" && r.Float64() < 0.5 {
			in.Proxy = r.IntN(len(f.PKI.Enterprise))
		}
		if r.Float64() < infectedShare {
			// Day of infection on an exponential growth curve: the n-th of
			// m machines is reached after log(n)/log(m) of the growth days.
			u := r.Float64()
			in.Intercepted = f.SpreadDay + int(math.Floor(growthDays*math.Pow(u, 0.35)))
			if in.Intercepted >= cfg.Days {
				in.Intercepted = -1
			}
		}
		switch x := r.Float64(); {
		case x < 0.004:
			in.StolenFrom = 0 // the legitimate vendor's rare users
		case x < 0.22:
			in.StolenFrom = f.StolenDay + r.IntN(2)
		}
		// Most installations start on the oldest release; late joiners
		// install whatever is current when they join.
		in.version = 0
		in.offers = make([]int, len(campaigns))
		in.failedTries = make([]int, len(campaigns))
		for k, cp := range campaigns {
			in.offers[k] = f.campaignStart(cp) + r.IntN(cp.RampDays+1)
		}
		in.rng = rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))
		f.Installations = append(f.Installations, in)
	}
	return f, nil
}

func (f *Fleet) campaignStart(cp Campaign) int {
	return int(cp.Start * float64(f.Days))
}

// currentRelease is the release a new installation gets on day d: the
// newest one whose healthy campaign had begun.
func (f *Fleet) currentRelease(d int) int {
	v := 0
	for _, cp := range campaigns {
		if cp.FailRate < 0.5 && f.campaignStart(cp) <= d && cp.To > v {
			v = cp.To
		}
	}
	return v
}

func countryIndex(code string) int {
	for i, c := range countries {
		if c.Code == code {
			return i
		}
	}
	return -1
}

// countryAddr draws an address in the block of the country's subdivision:
// 10.(16+country).(64*sub + x).y. These addresses are never connected to;
// they travel only in the proxy header and are looked up in the generated
// GeoIP database.
func countryAddr(ci, sub int, r *rand.Rand) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(16 + ci), byte(64*sub + r.IntN(64)), byte(1 + r.IntN(254))})
}

// uuid4 draws a random UUID version 4 in canonical lowercase form.
func uuid4(r *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		u := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(u >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexdigits[c>>4], hexdigits[c&0xf])
	}
	return string(out)
}

func pick(r *rand.Rand, w []float64) int {
	total := 0.0
	for _, x := range w {
		total += x
	}
	u := r.Float64() * total
	for i, x := range w {
		if u < x {
			return i
		}
		u -= x
	}
	return len(w) - 1
}

func pickW[T any](r *rand.Rand, w []weighted[T]) T {
	total := 0.0
	for _, x := range w {
		total += x.W
	}
	u := r.Float64() * total
	for _, x := range w {
		if u < x.W {
			return x.V
		}
		u -= x.W
	}
	return w[len(w)-1].V
}

// tail is a Zipf-like distribution over n ranks with exponent s (which may
// be at most 1, unlike math/rand's Zipf), sampled by inverse CDF.
type tail struct{ cdf []float64 }

func newTail(n int, s float64) *tail {
	t := &tail{cdf: make([]float64, n)}
	sum := 0.0
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), s)
		t.cdf[i] = sum
	}
	for i := range t.cdf {
		t.cdf[i] /= sum
	}
	return t
}

func (t *tail) draw(r *rand.Rand) int {
	u := r.Float64()
	lo, hi := 0, len(t.cdf)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if t.cdf[mid] < u {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
