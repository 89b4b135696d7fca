package report

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Section is a report laid out for HTML, the standalone file and the
// dashboard alike: the flags first, then the tables that hold the rows
// behind them, the charts, the other tables, and the privacy parameters.
type Section struct {
	Heading string
	K       string
	Flags   []FlagView
	Backing []TableView
	Charts  []RenderedChart
	Tables  []TableView
	Privacy []TableView
}

// FlagView is one flag with a link to the row that backs it. A subject
// that is a long identifier (a pin, a thumbprint) is shown after the name.
type FlagView struct {
	Kind, Subject, Name, Reason string
	SubjectIsID                 bool
	Anchor                      string // id of the backing row, "" if none is shown
}

// TableView is a table laid out for the page. Rows below k never reach it
// (the report leaves them out whole); Notes say how many were withheld.
type TableView struct {
	Name, Title string
	Columns     []ColumnView
	Rows        []RowView
	More        []RowView // published rows past the first few, folded
	Notes       []string  // whole-table remarks, such as how many issuers were withheld
}

// Narrow reports whether the table has so few columns that stretching it
// across the page would only part its labels from its figures.
func (t TableView) Narrow() bool { return len(t.Columns) <= 4 }

// ColumnView is a column heading and how its cells are set.
type ColumnView struct {
	Name  string // as in the CSV and JSON
	Label string // for people
	Class string // "num", "id", "name" or ""
}

// RowView is one row; Anchor is its id on the page.
type RowView struct {
	Anchor  string
	Flagged bool
	Cells   []CellView
}

// CellView is one cell. Class "id" cells show a shortened value whose full
// text stays in the cell (copying takes all of it) and in its title.
type CellView struct {
	Text  string
	Class string
	Parts []string // a "list" cell's items, each kept on one line
}

var numericColumns = map[string]bool{
	"installations": true, "connections": true, "growth": true, "files": true, "mismatch_installations": true,
	"tasks": true, "failures": true, "success_rate": true, "p50_ms": true, "p95_ms": true, "p99_ms": true,
	"occurrences": true, "share": true, "k": true, "contribution_cap": true, "epsilon": true, "delta": true,
}

var idColumns = map[string]bool{"id": true, "thumbprint_sha1": true}

var nameColumns = map[string]bool{"subject": true, "issuer": true, "value": true, "top_error": true, "control": true}

var dateColumns = map[string]bool{"period": true, "week": true, "first_seen": true, "last_seen": true, "not_before": true, "not_after": true}

// longHex is an identifier too long to read whole: a pin, a digest.
var longHex = regexp.MustCompile(`^[0-9a-f]{24,}$`)

func columnClass(name string) string {
	switch {
	case numericColumns[name]:
		return "num"
	case idColumns[name]:
		return "id"
	case nameColumns[name]:
		return "name"
	case dateColumns[name]:
		return "date"
	case name == "countries" || name == "flags" || name == "valid" || name == "seen":
		return "list"
	}
	return ""
}

// spans are pairs of date columns shown as one "from → to" column, so that
// a certificate table fits a 1,280 px screen.
var spans = []struct{ from, to, name string }{
	{"not_before", "not_after", "valid"},
	{"first_seen", "last_seen", "seen"},
}

// joinSpans returns t with each pair of span columns joined.
func joinSpans(t Table) Table {
	for _, sp := range spans {
		a, b := slices.Index(t.Columns, sp.from), slices.Index(t.Columns, sp.to)
		if a < 0 || b != a+1 {
			continue
		}
		cols := slices.Concat(t.Columns[:a], []string{sp.name}, t.Columns[b+1:])
		rows := make([][]string, len(t.Rows))
		for i, r := range t.Rows {
			if len(r) <= b {
				rows[i] = r
				continue
			}
			rows[i] = slices.Concat(r[:a], []string{r[a] + " → " + r[b]}, r[b+1:])
		}
		t = Table{Name: t.Name, Title: t.Title, Columns: cols, Rows: rows}
	}
	return t
}

// viewTable lays t out; anchors of its rows start with t.Name.
func viewTable(t Table) TableView {
	t = joinSpans(t)
	v := TableView{Name: t.Name, Title: t.Title}
	flagCol := -1
	for i, c := range t.Columns {
		v.Columns = append(v.Columns, ColumnView{Name: c, Label: strings.ReplaceAll(c, "_", " "), Class: columnClass(c)})
		if c == "flags" || c == "flagged" {
			flagCol = i
		}
	}
	var flagged, plain []RowView
	for ri, r := range t.Rows {
		if len(r) < len(t.Columns) && len(r) == 1 {
			v.Notes = append(v.Notes, r[0])
			continue
		}
		row := RowView{Anchor: fmt.Sprintf("%s-%d", t.Name, ri)}
		for i, cell := range r {
			class := ""
			if i < len(v.Columns) {
				class = v.Columns[i].Class
			}
			if longHex.MatchString(cell) {
				class = "id"
			}
			cv := CellView{Text: cell, Class: class}
			if class == "list" {
				switch t.Columns[i] {
				case "countries":
					cv.Parts = foldCountries(cell)
				case "valid", "seen":
					if from, to, ok := strings.Cut(cell, " → "); ok {
						cv.Parts = []string{from, "→ " + to}
					}
				default:
					cv.Parts = strings.Fields(cell)
				}
				cv.Text = strings.Join(cv.Parts, " ")
			}
			row.Cells = append(row.Cells, cv)
		}
		row.Flagged = flagCol >= 0 && flagCol < len(r) && r[flagCol] != ""
		switch {
		case row.Flagged:
			flagged = append(flagged, row)
		default:
			plain = append(plain, row)
		}
	}
	// The rows behind a flag come first, and are never folded.
	v.Rows = append(flagged, plain...)
	if keep := max(len(flagged), shownRows); len(v.Rows) > keep+foldAtLeast {
		v.Rows, v.More = v.Rows[:keep], v.Rows[keep:]
	}
	return v
}

// A long table shows its first shownRows rows and folds the rest, unless
// that would fold fewer than foldAtLeast.
const (
	shownRows   = 10
	foldAtLeast = 5
)

// hasFlagged reports whether a table holds a flagged row.
func (t TableView) hasFlagged() bool {
	return slices.ContainsFunc(t.Rows, func(r RowView) bool { return r.Flagged })
}

// Layout renders d's charts and lays its tables out for HTML.
func Layout(d Document) (Section, error) {
	s := Section{Heading: d.Heading()}
	for _, c := range d.Charts() {
		rc, err := c.Render()
		if err != nil {
			return s, err
		}
		s.Charts = append(s.Charts, rc)
	}
	var flags []Table
	for _, t := range d.Tables() {
		switch v := viewTable(t); {
		case t.Name == "flags":
			flags = append(flags, t)
		case t.Name == "privacy":
			s.Privacy = append(s.Privacy, v)
			if len(t.Rows) > 0 && len(t.Rows[0]) > 0 {
				s.K = t.Rows[0][0]
			}
		case v.hasFlagged():
			s.Backing = append(s.Backing, v)
		default:
			s.Tables = append(s.Tables, v)
		}
	}
	for _, t := range flags {
		for _, r := range t.Rows {
			if len(r) < 4 {
				continue
			}
			f := FlagView{Kind: r[0], Subject: r[1], Name: r[2], Reason: r[3], SubjectIsID: longHex.MatchString(r[1])}
			f.Anchor = backingRow(s.Backing, f.Subject)
			s.Flags = append(s.Flags, f)
		}
	}
	return s, nil
}

// backingRow finds the flagged row that names subject.
func backingRow(tables []TableView, subject string) string {
	for _, t := range tables {
		for _, r := range t.Rows {
			if r.Flagged && slices.ContainsFunc(r.Cells, func(c CellView) bool { return c.Text == subject }) {
				return r.Anchor
			}
		}
	}
	return ""
}

// foldCountries keeps the published countries of a "DE:24 FR:<k" list and
// counts the withheld ones, which say nothing but that they exist.
func foldCountries(cell string) []string {
	var shown []string
	withheld := 0
	for _, c := range strings.Fields(cell) {
		if strings.HasSuffix(c, ":"+suppressedMark) {
			withheld++
			continue
		}
		shown = append(shown, c)
	}
	if withheld > 0 {
		shown = append(shown, fmt.Sprintf("+%d below k", withheld))
	}
	return shown
}
