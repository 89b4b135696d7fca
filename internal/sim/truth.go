package sim

import (
	"maps"
	"sort"
	"sync"
	"time"
)

// Truth is what the fleet really did, recorded while it was generated, to
// compare with what the server stored and what the reports say.
type Truth struct {
	Start time.Time
	Days  []*DayTruth
	// Installations is the number of distinct installations in use at
	// least once during the period.
	Installations int

	// The planted findings the reports must flag.
	InterceptionRoot   *Cert
	EnterpriseRoots    []*Cert
	StolenSigner       *Cert
	FailingCampaign    string
	ExpiredCertificate *Cert

	seenBits []bool
	taskBits []bool // installations that sent a task event, the only one that carries a location

	mu        sync.Mutex
	delivered map[string]struct{} // event ids the server confirmed, when recorded
	Sent      Counters            // what the uploader saw, across all batches
}

// DayTruth is one simulated day.
type DayTruth struct {
	Date              string // YYYY-MM-DD
	Active            int    // distinct installations that sent their daily user_count
	ByVersion         map[string]int
	ByCountry         map[string]int
	ByOS              map[string]int
	Events            map[string]int // generated events by type
	Intercepted       int            // installations that saw the planted interception root
	EnterpriseProxied int            // installations behind an enterprise proxy
	StolenSigner      int            // installations that scanned a file signed with the stolen certificate
	Campaigns         map[string]*CampaignDay
}

// CampaignDay counts one campaign's upgrade attempts on one day.
type CampaignDay struct{ Attempts, Failures int }

// Counters is what the uploader learnt from the server.
type Counters struct {
	Batches        int            `json:"batches"`         // batches the server confirmed
	Accepted       int            `json:"accepted"`        // events accepted
	Rejected       int            `json:"rejected"`        // events rejected individually
	DroppedBatches int            `json:"dropped_batches"` // batches refused as a whole (permanent 4xx)
	DroppedEvents  int            `json:"dropped_events"`  // the events in them
	Retries        int            `json:"retries"`         // attempts that were retried (network errors, 429, 503)
	Duplicates     int            `json:"duplicates"`      // confirmations of a batch the server had already seen
	RejectionCodes map[string]int `json:"rejection_codes"`
}

// NewTruth starts the record for fleet f. With recordDelivered, every event
// id the server confirms is kept, for exact comparison with the store.
func NewTruth(f *Fleet, recordDelivered bool) *Truth {
	t := &Truth{
		Start:              f.Start,
		InterceptionRoot:   f.PKI.Interception.Root,
		StolenSigner:       f.PKI.Stolen,
		FailingCampaign:    FailingCampaign,
		ExpiredCertificate: f.PKI.Expired.Intermediate,
		seenBits:           make([]bool, len(f.Installations)),
		taskBits:           make([]bool, len(f.Installations)),
		Sent:               Counters{RejectionCodes: map[string]int{}},
	}
	for _, e := range f.PKI.Enterprise {
		t.EnterpriseRoots = append(t.EnterpriseRoots, e.Root)
	}
	if recordDelivered {
		t.delivered = map[string]struct{}{}
	}
	for d := range f.Days {
		t.Days = append(t.Days, &DayTruth{
			Date:      f.Start.Add(time.Duration(d) * day).Format(time.DateOnly),
			ByVersion: map[string]int{}, ByCountry: map[string]int{}, ByOS: map[string]int{},
			Events: map[string]int{}, Campaigns: map[string]*CampaignDay{},
		})
	}
	return t
}

func (t *Truth) day(d int) *DayTruth { return t.Days[d] }

func (t *Truth) seen(i int) {
	if !t.seenBits[i] {
		t.seenBits[i] = true
		t.Installations++
	}
}

func (dt *DayTruth) campaign(id string) *CampaignDay {
	c := dt.Campaigns[id]
	if c == nil {
		c = &CampaignDay{}
		dt.Campaigns[id] = c
	}
	return c
}

// Counters returns what the uploader has learnt from the server so far;
// it may be called while the fleet runs.
func (t *Truth) Counters() Counters {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.Sent
	c.RejectionCodes = maps.Clone(c.RejectionCodes)
	return c
}

// EventsGenerated is the total number of events of all days.
func (t *Truth) EventsGenerated() int {
	n := 0
	for _, d := range t.Days {
		for _, c := range d.Events {
			n += c
		}
	}
	return n
}

// Delivered returns the sorted ids of the events the server confirmed, if
// they were recorded.
func (t *Truth) Delivered() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.delivered))
	for id := range t.delivered {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// CampaignTotals sums a campaign's attempts and failures over the period.
func (t *Truth) CampaignTotals(id string) CampaignDay {
	var c CampaignDay
	for _, d := range t.Days {
		if x := d.Campaigns[id]; x != nil {
			c.Attempts += x.Attempts
			c.Failures += x.Failures
		}
	}
	return c
}

// record adds the outcome of one upload.
func (t *Truth) record(u *Upload, res *Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Sent.Retries += res.Retries
	if res.Dropped != "" {
		t.Sent.DroppedBatches++
		t.Sent.RejectionCodes[res.Dropped]++
		if res.Delivered == nil {
			t.Sent.DroppedEvents += len(u.Batch.Events)
			return
		}
	}
	t.Sent.Batches++
	if res.Duplicate {
		t.Sent.Duplicates++
	}
	t.Sent.Accepted += res.Accepted
	t.Sent.Rejected += len(res.Rejected)
	rejected := make(map[int]bool, len(res.Rejected))
	for _, r := range res.Rejected {
		rejected[r.Index] = true
		t.Sent.RejectionCodes[r.Code]++
	}
	if t.delivered != nil && res.Delivered != nil {
		for _, id := range res.Delivered {
			t.delivered[id] = struct{}{}
		}
	} else if t.delivered != nil {
		for i, ev := range u.Batch.Events {
			if !rejected[i] {
				t.delivered[ev.ID] = struct{}{}
			}
		}
	}
}
