package report

import (
	"fmt"
	"strconv"
	"strings"
)

// Table is a report section as rows of text, shared by CSV, Markdown and HTML.
type Table struct {
	Name    string
	Title   string
	Columns []string
	Rows    [][]string
}

// suppressedMark is what a withheld figure shows.
const suppressedMark = "<k"

func n(v *int64) string {
	if v == nil {
		return suppressedMark
	}
	return strconv.FormatInt(*v, 10)
}

func pct(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(100**v, 'f', 1, 64) + "%"
}

func flags(fs []string) string { return strings.Join(fs, " ") }

func flagTable(fs []Flag) Table {
	t := Table{Name: "flags", Title: "Flags", Columns: []string{"kind", "subject", "name", "reason"}}
	for _, f := range fs {
		t.Rows = append(t.Rows, []string{f.Kind, f.Subject, f.Name, f.Reason})
	}
	return t
}

func privacyTable(p Privacy) Table {
	eps := ""
	if p.Epsilon > 0 {
		eps = strconv.FormatFloat(p.Epsilon, 'g', -1, 64)
	}
	return Table{Name: "privacy", Title: "Privacy parameters", Columns: []string{"k", "contribution_cap", "noise", "epsilon", "delta"},
		Rows: [][]string{{strconv.Itoa(p.K), strconv.FormatInt(p.ContributionCap, 10), p.Noise, eps, strconv.FormatFloat(p.Delta, 'g', -1, 64)}}}
}

func pointTable(name, title string, pts []Point) Table {
	t := Table{Name: name, Title: title, Columns: []string{"period", "installations"}}
	for _, p := range pts {
		t.Rows = append(t.Rows, []string{p.Period, n(p.Installs)})
	}
	return t
}

// Tables lays the quality report out as tables.
func (q *Quality) Tables() []Table {
	ts := []Table{privacyTable(q.Privacy), flagTable(q.Flags)}
	ts = append(ts, pointTable("active_period", "Active installations in the period", []Point{q.Active.Period}),
		pointTable("active_daily", "Daily active installations", q.Active.Daily),
		pointTable("active_weekly", "Weekly active installations", q.Active.Weekly),
		pointTable("active_monthly", "Monthly active installations", q.Active.Monthly))
	by := Table{Name: "active_by", Title: "Active installations by dimension", Columns: []string{"dimension", "value", "installations", "share"}}
	for _, r := range q.Active.By {
		by.Rows = append(by.Rows, []string{r.Dimension, r.Value, n(r.Installs), pct(r.Share)})
	}
	wk := Table{Name: "active_by_week", Title: "Weekly active installations by dimension", Columns: []string{"dimension", "value", "week", "installations"}}
	for _, r := range q.Active.By {
		for _, p := range r.Weekly {
			wk.Rows = append(wk.Rows, []string{r.Dimension, r.Value, p.Period, n(p.Installs)})
		}
	}
	withheldRow(&by, q.Withheld.ActiveBy)
	ts = append(ts, by, wk, shareTable("update_coverage", "Installed update packages", "package", q.UpdateCoverage, q.Withheld.UpdateCoverage),
		shareTable("license_providers", "Licence providers", "site", q.Licenses, q.Withheld.Licenses))
	et := Table{Name: "errors", Title: "Errors in use", Columns: []string{"type", "code", "control", "first_seen", "installations", "occurrences"}}
	for _, e := range q.Errors {
		et.Rows = append(et.Rows, []string{e.Type, e.Code, e.Control, e.FirstSeen, n(e.Installs), n(e.Occurrences)})
	}
	tt := Table{Name: "tasks", Title: "Installation tasks", Columns: []string{"type", "by", "value", "installations", "tasks", "failures", "success_rate", "p50_ms", "p95_ms", "p99_ms", "flagged", "top_error"}}
	for _, r := range q.Tasks {
		top := ""
		for _, e := range r.Errors {
			if e.Installs != nil {
				top = fmt.Sprintf("%s %s (%s)", e.ErrorType, e.ErrorCode, n(e.Tasks))
				break
			}
		}
		fl := ""
		if r.Flagged {
			fl = "failing_campaign"
		}
		tt.Rows = append(tt.Rows, []string{r.Type, r.By, r.Value, n(r.Installs), n(r.Tasks), n(r.Failures), pct(r.SuccessRate), n(r.P50ms), n(r.P95ms), n(r.P99ms), fl, top})
	}
	withheldRow(&et, q.Withheld.Errors)
	withheldRow(&tt, q.Withheld.Tasks)
	return append(ts, et, tt)
}

func shareTable(name, title, col string, rows []ShareRow, withheld int) Table {
	t := Table{Name: name, Title: title, Columns: []string{col, "installations", "share"}}
	for _, r := range rows {
		t.Rows = append(t.Rows, []string{r.Value, n(r.Installs), pct(r.Share)})
	}
	withheldRow(&t, withheld)
	return t
}

// withheldRow says how many rows below k a table leaves out, and nothing
// else about them.
func withheldRow(t *Table, rows int) {
	if rows > 0 {
		t.Rows = append(t.Rows, []string{fmt.Sprintf("%d rows below k withheld", rows)})
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Tables lays the threat report out as tables.
func (t *Threats) Tables() []Table {
	it := Table{Name: "tls_issuers", Title: "Issuers of TLS chains", Columns: []string{"id", "subject", "public_root", "self_signed", "not_before", "not_after", "first_seen", "last_seen", "installations", "connections", "growth", "flags"}}
	for _, r := range t.Issuers {
		pub := "unknown"
		if r.PublicRoot != nil {
			pub = yes(*r.PublicRoot)
		}
		g := ""
		if r.Growth != nil {
			g = strconv.FormatFloat(*r.Growth, 'f', 2, 64)
		}
		it.Rows = append(it.Rows, []string{r.ID, r.Subject, pub, yes(r.SelfSigned), r.NotBefore, r.NotAfter, r.FirstSeen, r.LastSeen, n(r.Installs), n(r.Connections), g, flags(r.Flags)})
	}
	if t.IssuersSuppressed > 0 {
		it.Rows = append(it.Rows, []string{fmt.Sprintf("%d issuers below k withheld", t.IssuersSuppressed)})
	}
	st := Table{Name: "file_signers", Title: "Signers of scanned files", Columns: []string{"thumbprint_sha1", "subject", "issuer", "first_seen", "last_seen", "installations", "files", "flags"}}
	for _, r := range t.Signers {
		st.Rows = append(st.Rows, []string{r.ID, r.Subject, r.Issuer, r.FirstSeen, r.LastSeen, n(r.Installs), n(r.Files), flags(r.Flags)})
	}
	if t.SignersSuppressed > 0 {
		st.Rows = append(st.Rows, []string{fmt.Sprintf("%d signers below k withheld", t.SignersSuppressed)})
	}
	return []Table{privacyTable(t.Privacy), flagTable(t.Flags), it, st}
}
