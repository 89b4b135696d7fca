package report_test

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/report"
)

func count(v int64) *int64 { return &v }

func daily(vals ...float64) []report.Point {
	pts := make([]report.Point, len(vals))
	for i, v := range vals {
		pts[i].Period = fmt.Sprintf("2026-11-%02d", i+1)
		if !math.IsNaN(v) {
			pts[i].Installs = count(int64(v))
		}
	}
	return pts
}

// The error chart shows the errors seen on the most installations among
// those that may be published, whatever their order in the list; errors
// withheld over the period, or on every day, are not candidates.
func TestErrorChartPicksTheMostInstallations(t *testing.T) {
	nan := math.NaN()
	q := &report.Quality{Active: report.Active{Daily: daily(100, 110, 120)}}
	for i := range 7 {
		q.Errors = append(q.Errors, report.ErrorRow{Type: "ui_error", Code: fmt.Sprintf("E%d", i), Control: "c",
			Installs: count(int64(20 + i)), Daily: daily(nan, 12, nan)})
	}
	q.Errors = append(q.Errors,
		report.ErrorRow{Type: "ui_crash", Code: "E0C05", Control: "tray.menu_0", Installs: count(847), Daily: daily(300, 310, 320)},
		report.ErrorRow{Type: "ui_crash", Code: "E0C06", Control: "c", Installs: nil, Daily: daily(nan, nan, nan)},
		report.ErrorRow{Type: "ui_crash", Code: "E0C07", Control: "c", Installs: count(999), Daily: daily(nan, nan, nan)},
	)
	var ec report.Chart
	for _, c := range q.Charts() {
		if c.Title == "Installations meeting each error" {
			ec = c
		}
	}
	if len(ec.Series) != 6 {
		t.Fatalf("%d series, want 6", len(ec.Series))
	}
	var got []string
	for _, s := range ec.Series {
		got = append(got, s.Label)
	}
	want := []string{"ui_crash E0C05", "ui_error E6", "ui_error E5", "ui_error E4", "ui_error E3", "ui_error E2"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("series %q, want %q", got, want)
	}
}

var seriesPath = regexp.MustCompile(`<path class="series" data-series="(\d+)" d="[^"]+" style="[^"]*stroke:(#[0-9A-F]{6})[^"]*"><title>([^<]*)</title></path>`)

// Every line of every series is marked and titled with the series' full
// name; the text is in the page's font; the legend tells series apart.
func TestChartSVGMarksEverySeries(t *testing.T) {
	nan := math.NaN()
	c := report.Chart{Title: "Installations per TLS issuer", YLabel: "installations", Labels: []string{"2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"},
		Series: []report.ChartSeries{
			{Name: "CN=Same Root CA,O=Alpha Corp", Label: "Same Root CA", Values: []float64{1, 2, nan, 4}, Highlight: true},
			{Name: "CN=Same Root CA,O=Beta Corp", Label: "Same Root CA", Values: []float64{3, 3, 3, 3}},
			{Name: "CN=Withheld", Values: []float64{nan, nan, nan, nan}},
		}}
	rc, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	svg := string(rc.SVG)
	paths := seriesPath.FindAllStringSubmatch(svg, -1)
	// Series 0 has two segments (a withheld day between), series 1 one,
	// series 2 none.
	if len(paths) != 3 || strings.Count(svg, `class="series"`) != 3 {
		t.Fatalf("%d marked lines, want 3:\n%s", len(paths), svg)
	}
	colors := map[string]string{}
	for _, p := range paths {
		name := c.Series[p[1][0]-'0'].Name
		if p[3] != name {
			t.Errorf("line of series %s titled %q, want %q", p[1], p[3], name)
		}
		if prev, ok := colors[p[2]]; ok && prev != p[1] {
			t.Errorf("series %s and %s share the colour %s", prev, p[1], p[2])
		}
		colors[p[2]] = p[1]
	}
	if strings.Contains(svg, "Liberation") || !strings.Contains(svg, "font-family:inherit") || strings.HasPrefix(svg, "<?xml") {
		t.Error("the chart's text is not in the page's font")
	}
	if !strings.Contains(svg, "viewBox=") {
		t.Error("the chart cannot be sized to the page: no viewBox")
	}
	if len(rc.Legend) != 2 {
		t.Fatalf("legend %+v: want the two drawn series", rc.Legend)
	}
	if rc.Legend[0].Label == rc.Legend[1].Label {
		t.Errorf("two legend entries read %q", rc.Legend[0].Label)
	}
	for i, e := range rc.Legend {
		if e.Name != c.Series[i].Name || !strings.HasPrefix(e.Label, "Same Root CA") || len(e.Label) > 60 {
			t.Errorf("legend %d: %+v", i, e)
		}
		if _, ok := colors[e.Color]; !ok {
			t.Errorf("legend %d's colour %s is no line's", i, e.Color)
		}
	}
	if !rc.Legend[0].Highlight || rc.Legend[1].Highlight {
		t.Error("the flagged series is not marked in the legend")
	}

	empty, err := report.Chart{Title: "x", Labels: c.Labels, Series: c.Series[2:]}.Render()
	if err != nil || empty.SVG != "" || len(empty.Legend) != 0 {
		t.Errorf("a chart with nothing published drew %q (%v)", empty.SVG, err)
	}
}

// The HTML puts the flags first, each with a link to the row behind it,
// then the tables holding those rows with the flagged rows on top; rows
// whose figures are withheld are folded away behind their count.
func TestLayoutFlagsFirstAndWithheldFolded(t *testing.T) {
	f, _, store := fleet(t)
	q, err := report.BuildQuality(context.Background(), store, opts(f))
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.Layout(q)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Flags) == 0 || len(s.Backing) != 1 || s.Backing[0].Name != "tasks" {
		t.Fatalf("flags %d, backing tables %v", len(s.Flags), s.Backing)
	}
	tasks := s.Backing[0]
	if !tasks.Rows[0].Flagged || s.Flags[0].Anchor != tasks.Rows[0].Anchor {
		t.Errorf("the flag links to %q, the first task row is %q (flagged %v)", s.Flags[0].Anchor, tasks.Rows[0].Anchor, tasks.Rows[0].Flagged)
	}
	withheld := 0
	for _, tv := range append(s.Backing, s.Tables...) {
		col := -1
		for i, c := range tv.Columns {
			if c.Name == "installations" {
				col = i
			}
		}
		for _, r := range tv.Rows {
			if col >= 0 && r.Cells[col].Text == "<k" && !r.Flagged {
				t.Errorf("%s: a withheld row is shown unfolded", tv.Name)
			}
		}
		for _, n := range tv.Notes {
			if strings.Contains(n, "below k withheld") {
				withheld++
			}
		}
	}
	if withheld == 0 {
		t.Fatal("this fleet has withheld rows, no table says so")
	}
	var b strings.Builder
	if err := report.WriteHTML(&b, q); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if !strings.Contains(page, "rows below k withheld") {
		t.Error("the page does not say that rows were withheld")
	}
	flags, backing, charts := strings.Index(page, `id="flags"`), strings.Index(page, `<table class="tasks"`), strings.Index(page, `<figure class="chart"`)
	if flags < 0 || backing < flags || charts < backing {
		t.Errorf("order of flags, tasks and charts: %d, %d, %d", flags, backing, charts)
	}
}
