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
	Versions       []string   `json:"versions"` // the versions whose installations reach k in the period, for filters
	Active         Active     `json:"active_installations"`
	UpdateCoverage []ShareRow `json:"update_coverage"`
	Errors         []ErrorRow `json:"errors"`
	Tasks          []TaskRow  `json:"tasks"`
	Licenses       []ShareRow `json:"license_providers"`
	// Withheld counts, per table, the rows whose cells are below k: they
	// are left out whole, label and figures.
	Withheld Withheld `json:"withheld_rows"`
}

// Withheld counts the rows left out of each table of the quality report.
type Withheld struct {
	ActiveBy       int `json:"active_by_dimension"`
	UpdateCoverage int `json:"update_coverage"`
	Licenses       int `json:"license_providers"`
	Errors         int `json:"errors"`
	Tasks          int `json:"tasks"`
	TaskErrors     int `json:"task_errors"`
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
	Dimension string   `json:"dimension"`
	Value     string   `json:"value"`
	Installs  *int64   `json:"installations"`
	Share     *float64 `json:"share"`
	Daily     []Point  `json:"daily,omitempty"`
	Weekly    []Point  `json:"weekly,omitempty"`
	Monthly   []Point  `json:"monthly,omitempty"`
}

// ShareRow is a count of installations with its share of a base.
type ShareRow struct {
	Value    string   `json:"value"`
	Installs *int64   `json:"installations"`
	Share    *float64 `json:"share"`
}

// ErrorRow is one kind of error met while the application was used.
type ErrorRow struct {
	Type        string  `json:"type"`
	Code        string  `json:"code"`
	Control     string  `json:"control"`
	FirstSeen   string  `json:"first_seen"`
	Installs    *int64  `json:"installations"`
	Occurrences *int64  `json:"occurrences"`
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
	Flagged     bool           `json:"flagged,omitempty"`
	Errors      []TaskErrorRow `json:"errors"`
}

// TaskErrorRow is one error of failed tasks.
type TaskErrorRow struct {
	ErrorType string `json:"error_type"`
	ErrorCode string `json:"error_code"`
	Installs  *int64 `json:"installations"`
	Tasks     *int64 `json:"tasks"`
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
	q.Active, q.Versions, q.Withheld.ActiveBy = o.active(set)
	q.UpdateCoverage, q.Withheld.UpdateCoverage = o.coverage(set)
	q.Errors, q.Withheld.Errors = o.errors(set)
	q.Tasks, q.Withheld.Tasks, q.Withheld.TaskErrors = o.tasks(set, q)
	q.Licenses, q.Withheld.Licenses = o.licenses(set)
	return q, nil
}

var allDims = rollup.Dims("all", "all")

func (o Options) active(set *seriesSet) (a Active, versions []string, withheld int) {
	versions = []string{}
	total := set.get(rollup.ViewActive, allDims)
	if total == nil {
		total = &series{view: rollup.ViewActive, dims: allDims, byDay: map[string]*rollup.Cell{}}
	}
	ts := o.periodsOf(total)
	a.Period = o.point(o.From+"/"+o.To, ts.period.Distinct())
	a.Daily = o.dailyPoints(total)
	a.Weekly = o.points(ts.weeks)
	a.Monthly = o.points(ts.months)
	a.By = []DimRow{}
	for _, sr := range set.view(rollup.ViewActive) {
		if sr.dims == allDims {
			continue
		}
		v, _ := rollup.ParseDims(sr.dims)
		for dim := range v {
			sp := o.periodsOf(sr)
			c := sp.period
			if c.Events == 0 {
				continue
			}
			p, ok := o.publish(c.Distinct())
			if !ok {
				withheld++
				continue
			}
			if dim == "version" {
				versions = append(versions, v.Get(dim))
				if o.Version != "" && v.Get(dim) != o.Version {
					continue
				}
			}
			n := p.installations()
			a.By = append(a.By, DimRow{Dimension: dim, Value: v.Get(dim), Installs: n, Share: ratio(n, a.Period.Installs),
				Daily: o.dailyPoints(sr), Weekly: o.points(sp.weeks), Monthly: o.points(sp.months)})
		}
	}
	sort.SliceStable(a.By, func(i, j int) bool {
		if a.By[i].Dimension != a.By[j].Dimension {
			return a.By[i].Dimension < a.By[j].Dimension
		}
		return a.By[i].Value < a.By[j].Value
	})
	sort.Strings(versions)
	return a, versions, withheld
}

// shareRows are the published rows of a view, with how many were withheld;
// Share is left for the caller, which knows the base.
func (o Options) shareRows(set *seriesSet, view, dim string) (rows []ShareRow, withheld int) {
	rows = []ShareRow{}
	cells, withheld := o.publishedCells(set, view, nil)
	for _, pc := range cells {
		rows = append(rows, ShareRow{Value: dimsOf(pc.sr.dims)[dim], Installs: pc.p.installations()})
	}
	return rows, withheld
}

// publishedCell is a series with events in the period whose installations
// reach k: its cell merged over the period and what may be published of it.
type publishedCell struct {
	sr *series
	c  *rollup.Cell
	p  published
}

// publishedCells returns the published cells of the view's series, in
// order, and how many were withheld below k. keep, when given, passes over
// series before they count either way.
func (o Options) publishedCells(set *seriesSet, view string, keep func(*series) bool) (out []publishedCell, withheld int) {
	for _, sr := range set.view(view) {
		c := sr.merged(o.From, o.To)
		if c.Events == 0 || keep != nil && !keep(sr) {
			continue
		}
		p, ok := o.publish(c.Distinct())
		if !ok {
			withheld++
			continue
		}
		out = append(out, publishedCell{sr: sr, c: c, p: p})
	}
	return out, withheld
}

// coverage is each update package's share of the installations that
// reported their OS, a cell of its own.
func (o Options) coverage(set *seriesSet) ([]ShareRow, int) {
	var base *int64
	if sr := set.get(rollup.ViewOSReporting, allDims); sr != nil {
		if p, ok := o.publish(sr.merged(o.From, o.To).Distinct()); ok {
			base = p.installations()
		}
	}
	rows, withheld := o.shareRows(set, rollup.ViewUpdate, "package")
	for i := range rows {
		rows[i].Share = ratio(rows[i].Installs, base)
	}
	return rows, withheld
}

// licenses is each provider's share of the published providers: a base
// that summed the withheld ones too would give their total away by
// subtraction.
func (o Options) licenses(set *seriesSet) ([]ShareRow, int) {
	rows, withheld := o.shareRows(set, rollup.ViewLicense, "site")
	var total int64
	for _, r := range rows {
		total += *r.Installs
	}
	for i := range rows {
		rows[i].Share = ratio(rows[i].Installs, &total)
	}
	return rows, withheld
}

func (o Options) errors(set *seriesSet) (rows []ErrorRow, withheld int) {
	rows = []ErrorRow{}
	cells, withheld := o.publishedCells(set, rollup.ViewUIError, nil)
	for _, pc := range cells {
		sr, c, p := pc.sr, pc.c, pc.p
		d := dimsOf(sr.dims)
		first, _ := sr.firstLast()
		rows = append(rows, ErrorRow{Type: d["type"], Code: d["code"], Control: d["control"], FirstSeen: first,
			Installs: p.installations(), Occurrences: o.figure(p, c.Weight, o.ContributionCap), Daily: o.dailyPoints(sr)})
	}
	return rows, withheld
}

func quantileMs(_ published, c *rollup.Cell, q float64) *int64 {
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

func (o Options) tasks(set *seriesSet, q *Quality) (rows []TaskRow, withheld, withheldErrors int) {
	rows = []TaskRow{}
	errs := map[string][]TaskErrorRow{}
	errCells, withheldErrors := o.publishedCells(set, rollup.ViewTaskError, nil)
	for _, pc := range errCells {
		c, p := pc.c, pc.p
		d := dimsOf(pc.sr.dims)
		by, val := taskDim(d)
		e := TaskErrorRow{ErrorType: d["error_type"], ErrorCode: d["error_code"], Installs: p.installations(), Tasks: o.figure(p, c.Events, 1)}
		k := d["type"] + "\x00" + by + "\x00" + val
		errs[k] = append(errs[k], e)
	}
	type agg struct{ events, failures int64 }
	byType := map[string]agg{}
	var raw []struct {
		row            int
		events, failed int64
	}
	// Rows of other versions than the one asked for are left out, not
	// withheld.
	cells, withheld := o.publishedCells(set, rollup.ViewTask, func(sr *series) bool {
		by, val := taskDim(dimsOf(sr.dims))
		return by != "version" || o.Version == "" || val == o.Version
	})
	for _, pc := range cells {
		c, p := pc.c, pc.p
		d := dimsOf(pc.sr.dims)
		by, val := taskDim(d)
		row := TaskRow{Type: d["type"], By: by, Value: val, Installs: p.installations(),
			Tasks: o.figure(p, c.Events, 1), Failures: o.figure(p, c.Failures, 1),
			P50ms: quantileMs(p, c, 0.5), P95ms: quantileMs(p, c, 0.95), P99ms: quantileMs(p, c, 0.99),
			Errors: errs[d["type"]+"\x00"+by+"\x00"+val]}
		if row.Errors == nil {
			row.Errors = []TaskErrorRow{}
		}
		r := float64(c.Events-c.Failures) / float64(c.Events)
		r = math.Round(r*10000) / 10000
		row.SuccessRate = &r
		rows = append(rows, row)
		if by == "campaign" {
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
	return rows, withheld, withheldErrors
}
