package report

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/provisionhq/provision/internal/rollup"
)

// Quality is the quality report.
type Quality struct {
	Report         string     `json:"report"`
	From           string     `json:"from"`
	To             string     `json:"to"`
	Privacy        Privacy    `json:"privacy"`
	Flags          []Flag     `json:"flags"`
	Versions       []string   `json:"versions"` // every version seen in the period, for filters
	Active         Active     `json:"active_installations"`
	UpdateCoverage []ShareRow `json:"update_coverage"`
	Errors         []ErrorRow `json:"errors"`
	Tasks          []TaskRow  `json:"tasks"`
	Licenses       []ShareRow `json:"license_providers"`
}

// Flag marks something that needs a look.
type Flag struct {
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	Name    string `json:"name,omitempty"`
	Reason  string `json:"reason"`
}

// Active counts active installations.
type Active struct {
	Period  Point    `json:"period"`
	Daily   []Point  `json:"daily"`
	Weekly  []Point  `json:"weekly"`
	Monthly []Point  `json:"monthly"`
	By      []DimRow `json:"by_dimension"`
}

// DimRow is the active installations with one dimension value: over the
// period, and per day, ISO week and month.
type DimRow struct {
	Dimension  string   `json:"dimension"`
	Value      string   `json:"value"`
	Installs   *int64   `json:"installations"`
	Share      *float64 `json:"share"`
	Suppressed bool     `json:"suppressed,omitempty"`
	Daily      []Point  `json:"daily,omitempty"`
	Weekly     []Point  `json:"weekly,omitempty"`
	Monthly    []Point  `json:"monthly,omitempty"`
}

// ShareRow is a count of installations with its share of a base.
type ShareRow struct {
	Value      string   `json:"value"`
	Installs   *int64   `json:"installations"`
	Share      *float64 `json:"share"`
	Suppressed bool     `json:"suppressed,omitempty"`
}

// ErrorRow is one kind of error met while the application was used.
type ErrorRow struct {
	Type        string  `json:"type"`
	Code        string  `json:"code"`
	Control     string  `json:"control"`
	FirstSeen   string  `json:"first_seen"`
	Installs    *int64  `json:"installations"`
	Occurrences *int64  `json:"occurrences"`
	Suppressed  bool    `json:"suppressed,omitempty"`
	Daily       []Point `json:"daily"`
}

// TaskRow is the outcome of one task type by version, campaign or country.
// Task events are the only ones that carry a location, so the country
// figures of the reports are these.
type TaskRow struct {
	Type        string         `json:"type"`
	By          string         `json:"by"` // version, campaign or country
	Value       string         `json:"value"`
	Installs    *int64         `json:"installations"`
	Tasks       *int64         `json:"tasks"`
	Failures    *int64         `json:"failures"`
	SuccessRate *float64       `json:"success_rate"`
	P50ms       *int64         `json:"duration_p50_ms"`
	P95ms       *int64         `json:"duration_p95_ms"`
	P99ms       *int64         `json:"duration_p99_ms"`
	Suppressed  bool           `json:"suppressed,omitempty"`
	Flagged     bool           `json:"flagged,omitempty"`
	Errors      []TaskErrorRow `json:"errors"`
}

// TaskErrorRow is one error of failed tasks.
type TaskErrorRow struct {
	ErrorType  string `json:"error_type"`
	ErrorCode  string `json:"error_code"`
	Installs   *int64 `json:"installations"`
	Tasks      *int64 `json:"tasks"`
	Suppressed bool   `json:"suppressed,omitempty"`
}

// BuildQuality makes the quality report for o's period.
func BuildQuality(ctx context.Context, s rollup.Store, o Options) (*Quality, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	set, err := loadSeries(ctx, s, rollup.Query{
		Views: []string{rollup.ViewActive, rollup.ViewOSReporting, rollup.ViewUpdate, rollup.ViewUIError, rollup.ViewTask, rollup.ViewTaskError, rollup.ViewLicense},
		To:    o.To, // from the start, for first-seen dates
	})
	if err != nil {
		return nil, err
	}
	q := &Quality{Report: "quality", From: o.From, To: o.To, Privacy: privacyOf(o), Flags: []Flag{}}
	q.Active, q.Versions = o.active(set)
	q.UpdateCoverage = o.coverage(set)
	q.Errors = o.errors(set)
	q.Tasks = o.tasks(set, q)
	q.Licenses = o.licenses(set)
	return q, nil
}

var allDims = rollup.Dims("all", "all")

func (o Options) active(set *seriesSet) (Active, []string) {
	var a Active
	versions := []string{}
	total := set.get(rollup.ViewActive, allDims)
	if total == nil {
		total = &series{view: rollup.ViewActive, dims: allDims, byDay: map[string]*rollup.Cell{}}
	}
	tc := total.merged(o.From, o.To)
	a.Period = o.point(o.From+"/"+o.To, tc.Distinct())
	a.Daily = o.dailyPoints(total)
	a.Weekly = o.grouped(total, week)
	a.Monthly = o.grouped(total, month)
	a.By = []DimRow{}
	for _, sr := range set.view(rollup.ViewActive) {
		if sr.dims == allDims {
			continue
		}
		v, _ := rollup.ParseDims(sr.dims)
		for dim := range v {
			c := sr.merged(o.From, o.To)
			if c.Events == 0 {
				continue
			}
			if dim == "version" {
				versions = append(versions, v.Get(dim))
				if o.Version != "" && v.Get(dim) != o.Version {
					continue
				}
			}
			n := o.gate(c.Distinct())
			row := DimRow{Dimension: dim, Value: v.Get(dim), Installs: n, Share: ratio(n, a.Period.Installs), Suppressed: n == nil}
			if n != nil {
				row.Daily, row.Weekly, row.Monthly = o.dailyPoints(sr), o.grouped(sr, week), o.grouped(sr, month)
			}
			a.By = append(a.By, row)
		}
	}
	sort.SliceStable(a.By, func(i, j int) bool {
		if a.By[i].Dimension != a.By[j].Dimension {
			return a.By[i].Dimension < a.By[j].Dimension
		}
		return a.By[i].Value < a.By[j].Value
	})
	sort.Strings(versions)
	return a, versions
}

func (o Options) shareRows(set *seriesSet, view, dim string, base *int64) []ShareRow {
	rows := []ShareRow{}
	for _, sr := range set.view(view) {
		c := sr.merged(o.From, o.To)
		if c.Events == 0 {
			continue
		}
		n := o.gate(c.Distinct())
		rows = append(rows, ShareRow{Value: dimsOf(sr.dims)[dim], Installs: n, Share: ratio(n, base), Suppressed: n == nil})
	}
	return rows
}

func (o Options) coverage(set *seriesSet) []ShareRow {
	var base *int64
	if sr := set.get(rollup.ViewOSReporting, allDims); sr != nil {
		base = o.gate(sr.merged(o.From, o.To).Distinct())
	}
	return o.shareRows(set, rollup.ViewUpdate, "package", base)
}

func (o Options) licenses(set *seriesSet) []ShareRow {
	var total int64
	for _, sr := range set.view(rollup.ViewLicense) {
		total += sr.merged(o.From, o.To).Distinct()
	}
	return o.shareRows(set, rollup.ViewLicense, "site", o.gate(total))
}

func (o Options) errors(set *seriesSet) []ErrorRow {
	rows := []ErrorRow{}
	for _, sr := range set.view(rollup.ViewUIError) {
		c := sr.merged(o.From, o.To)
		if c.Events == 0 {
			continue
		}
		d := dimsOf(sr.dims)
		first, _ := sr.firstLast()
		n := c.Distinct()
		row := ErrorRow{Type: d["type"], Code: d["code"], Control: d["control"], FirstSeen: first,
			Installs: o.gate(n), Occurrences: o.gateValue(n, c.Weight, o.ContributionCap), Daily: o.dailyPoints(sr)}
		row.Suppressed = row.Installs == nil
		rows = append(rows, row)
	}
	return rows
}

func quantileMs(c *rollup.Cell, q float64, ok bool) *int64 {
	if !ok {
		return nil
	}
	v, has := c.Quantile(q)
	if !has {
		return nil
	}
	ms := int64(math.Round(v))
	return &ms
}

// taskDim tells which dimension a task cell is cut by besides its type.
func taskDim(d map[string]string) (by, value string) {
	for _, by := range []string{"campaign", "country"} {
		if v, ok := d[by]; ok {
			return by, v
		}
	}
	return "version", d["version"]
}

func (o Options) tasks(set *seriesSet, q *Quality) []TaskRow {
	rows := []TaskRow{}
	errs := map[string][]TaskErrorRow{}
	for _, sr := range set.view(rollup.ViewTaskError) {
		c := sr.merged(o.From, o.To)
		if c.Events == 0 {
			continue
		}
		d := dimsOf(sr.dims)
		by, val := taskDim(d)
		n := c.Distinct()
		e := TaskErrorRow{ErrorType: d["error_type"], ErrorCode: d["error_code"], Installs: o.gate(n), Tasks: o.gateValue(n, c.Events, 1)}
		e.Suppressed = e.Installs == nil
		k := d["type"] + "\x00" + by + "\x00" + val
		errs[k] = append(errs[k], e)
	}
	type agg struct{ events, failures int64 }
	byType := map[string]agg{}
	var raw []struct {
		row            int
		events, failed int64
	}
	for _, sr := range set.view(rollup.ViewTask) {
		c := sr.merged(o.From, o.To)
		if c.Events == 0 {
			continue
		}
		d := dimsOf(sr.dims)
		by, val := taskDim(d)
		if by == "version" && o.Version != "" && val != o.Version {
			continue
		}
		n := c.Distinct()
		pass := n >= int64(o.K)
		row := TaskRow{Type: d["type"], By: by, Value: val, Installs: o.gate(n),
			Tasks: o.gateValue(n, c.Events, 1), Failures: o.gateValue(n, c.Failures, 1),
			P50ms: quantileMs(c, 0.5, pass), P95ms: quantileMs(c, 0.95, pass), P99ms: quantileMs(c, 0.99, pass),
			Errors: errs[d["type"]+"\x00"+by+"\x00"+val]}
		if row.Errors == nil {
			row.Errors = []TaskErrorRow{}
		}
		row.Suppressed = row.Installs == nil
		if pass {
			r := float64(c.Events-c.Failures) / float64(c.Events)
			r = math.Round(r*10000) / 10000
			row.SuccessRate = &r
		}
		rows = append(rows, row)
		if by == "campaign" && pass {
			// Only published campaigns form the comparison rate, so that it
			// reveals nothing about a withheld one.
			a := byType[row.Type]
			a.events += c.Events
			a.failures += c.Failures
			byType[row.Type] = a
			raw = append(raw, struct {
				row            int
				events, failed int64
			}{len(rows) - 1, c.Events, c.Failures})
		}
	}
	// A campaign fails when its failure rate is high on its own and well
	// above the other campaigns of the same task type.
	for _, r := range raw {
		row := &rows[r.row]
		if row.Suppressed {
			continue
		}
		rate := float64(r.failed) / float64(r.events)
		all := byType[row.Type]
		others := 0.0
		if all.events > r.events {
			others = float64(all.failures-r.failed) / float64(all.events-r.events)
		}
		if rate >= o.FailRate && rate >= o.FailFactor*others {
			row.Flagged = true
			q.Flags = append(q.Flags, Flag{Kind: "failing_campaign", Subject: row.Value,
				Reason: fmt.Sprintf("%s failure rate %.0f%% against %.0f%% in other campaigns", row.Type, 100*rate, 100*others)})
		}
	}
	return rows
}
