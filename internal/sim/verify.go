package sim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/provisionhq/provision"
)

// Check compares what a server stored with what the fleet saw confirmed.
type Check struct {
	Stored      int // records in the log
	Delivered   int // event ids the fleet saw confirmed
	Duplicates  int // event ids stored more than once
	Missing     int // confirmed but not stored
	Unconfirmed int // stored but never confirmed
	// DayMismatches lists the days whose distinct user_count installations
	// differ from the ground truth, as "date: stored N, truth M".
	DayMismatches []string
	// CountryMismatches lists countries whose distinct installations with a
	// task event (the only event that carries a location) over the period
	// differ from the truth, when the server derived countries.
	CountryMismatches []string
}

// OK reports whether the store holds every confirmed event exactly once
// and the user counts equal the truth.
func (c *Check) OK() bool {
	return c.Duplicates == 0 && c.Missing == 0 && c.Unconfirmed == 0 && len(c.DayMismatches) == 0 && len(c.CountryMismatches) == 0
}

func (c *Check) String() string {
	s := fmt.Sprintf("stored %d, confirmed %d, duplicates %d, missing %d, unconfirmed %d", c.Stored, c.Delivered, c.Duplicates, c.Missing, c.Unconfirmed)
	if len(c.DayMismatches) > 0 {
		s += "; user counts differ on " + strings.Join(c.DayMismatches, ", ")
	}
	if len(c.CountryMismatches) > 0 {
		s += "; countries differ: " + strings.Join(c.CountryMismatches, ", ")
	}
	return s
}

// Verify reads the whole log and compares it with the truth, which must
// have been recorded with recordDelivered. With countries, the stored
// countries are compared too (the server must have had the fleet's GeoIP
// database and trusted its address header).
func Verify(ctx context.Context, log provision.Log, t *Truth, f *Fleet, countries bool) (*Check, error) {
	t.mu.Lock()
	delivered := t.delivered
	t.mu.Unlock()
	if delivered == nil {
		return nil, fmt.Errorf("the truth did not record delivered events")
	}
	c := &Check{Delivered: len(delivered)}
	seen := make(map[string]uint8, len(delivered))
	perDay := make([]map[string]struct{}, len(t.Days))
	for i := range perDay {
		perDay[i] = map[string]struct{}{}
	}
	byCountry := map[string]map[string]struct{}{}
	var after int64
	for {
		recs, err := log.Read(ctx, after, 5000)
		if err != nil {
			return nil, fmt.Errorf("reading the log after %d: %w", after, err)
		}
		if len(recs) == 0 {
			break
		}
		for i := range recs {
			r := &recs[i]
			after = r.Seq
			c.Stored++
			if n := seen[r.Event.ID]; n == 1 {
				c.Duplicates++
			}
			if seen[r.Event.ID] < 2 {
				seen[r.Event.ID]++
			}
			if _, ok := delivered[r.Event.ID]; !ok {
				c.Unconfirmed++
			}
			if r.Event.Type == "user_count" {
				d := int(r.Event.Time.UTC().Sub(t.Start) / (24 * time.Hour))
				if d >= 0 && d < len(perDay) {
					perDay[d][r.InstallationID] = struct{}{}
				}
			}
			// The server keeps the location only with the event types
			// the manifest declares it for: task events.
			if r.Event.Type == "task" {
				if byCountry[r.Country] == nil {
					byCountry[r.Country] = map[string]struct{}{}
				}
				byCountry[r.Country][r.InstallationID] = struct{}{}
			}
		}
	}
	for id := range delivered {
		if seen[id] == 0 {
			c.Missing++
		}
	}
	for d, dt := range t.Days {
		if got := len(perDay[d]); got != dt.Active {
			c.DayMismatches = append(c.DayMismatches, fmt.Sprintf("%s: stored %d, truth %d", dt.Date, got, dt.Active))
		}
	}
	if countries && f != nil {
		want := map[string]int{}
		for i, in := range f.Installations {
			if t.taskBits[i] {
				want[in.Country]++
			}
		}
		for code, n := range want {
			if got := len(byCountry[code]); got != n {
				c.CountryMismatches = append(c.CountryMismatches, fmt.Sprintf("%s: stored %d, truth %d", code, got, n))
			}
		}
	}
	return c, nil
}
