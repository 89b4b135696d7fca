package report

import (
	"bytes"
	"cmp"
	"fmt"
	"html"
	"html/template"
	"image/color"
	"math"
	"regexp"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart is a line chart over days; a NaN value is a withheld point, drawn
// as a gap rather than as zero.
type Chart struct {
	Title  string
	YLabel string
	Labels []string // one per x position
	Series []ChartSeries
}

// ChartSeries is one line.
type ChartSeries struct {
	Name      string // the full name, shown on hover
	Label     string // a short legend label; "" means Name
	Values    []float64
	Highlight bool // flagged: drawn thick and red
}

// Each series of a chart has its own colour, so that a legend swatch, a
// line and its hover title are one thing. Flagged series take the reds,
// the others a palette without red or grey (grey is the grid's).
var (
	palette = []color.RGBA{
		{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0x94, 0x67, 0xbd, 0xff},
		{0x8c, 0x56, 0x4b, 0xff}, {0x17, 0xbe, 0xcf, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0xbc, 0xbd, 0x22, 0xff},
	}
	flagPalette = []color.RGBA{
		{0xd6, 0x27, 0x28, 0xff}, {0x99, 0x00, 0x0d, 0xff}, {0xef, 0x3b, 0x2c, 0xff},
		{0x67, 0x00, 0x0d, 0xff}, {0xfb, 0x6a, 0x4a, 0xff}, {0xa5, 0x0f, 0x15, 0xff},
	}
)

// maxSeries keeps charts readable; it is at most the size of each palette.
const maxSeries = 6

// The chart is drawn at about the size it is shown at (one column of the
// page's chart grid), so that its text matches the page's.
var (
	chartWidth  = vg.Points(480) // 640 CSS pixels
	chartHeight = vg.Points(210)
)

// dayTicks labels about eight evenly spread x positions.
type dayTicks []string

func (d dayTicks) Ticks(lo, hi float64) []plot.Tick {
	step := max(1, (len(d)+7)/8)
	var ts []plot.Tick
	for i := 0; i < len(d); i++ {
		t := plot.Tick{Value: float64(i)}
		if i%step == 0 {
			t.Label = d[i][5:] // MM-DD keeps the axis readable
		}
		ts = append(ts, t)
	}
	return ts
}

// countTicks puts about five whole-number ticks on a count axis.
type countTicks struct{}

func (countTicks) Ticks(lo, hi float64) []plot.Tick {
	step := niceStep(hi / 5)
	var ts []plot.Tick
	for v := 0.0; v <= hi+step/1000; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprintf("%.0f", v)})
	}
	return ts
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten, at least 1.
func niceStep(x float64) float64 {
	if x <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if x <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// LegendEntry names one series of a rendered chart.
type LegendEntry struct {
	Label     string // short, unique within the chart
	Name      string // full
	Color     string // #RRGGBB, the line's colour
	Highlight bool
}

// RenderedChart is a chart ready for HTML: the SVG carries the axes and
// the lines (each line a path of class "series" with its full name as a
// <title>); the title and the legend are HTML, in the page's font.
type RenderedChart struct {
	Title  string
	YLabel string
	SVG    template.HTML // empty when no series has a published point
	Legend []LegendEntry
}

// Render draws c.
func (c Chart) Render() (RenderedChart, error) {
	rc := RenderedChart{Title: c.Title, YLabel: c.YLabel}
	p := plot.New()
	sans := font.Font{Typeface: "Liberation", Variant: "Sans", Size: vg.Points(9)}
	p.X.Tick.Label.Font, p.Y.Tick.Label.Font = sans, sans
	p.X.Tick.Marker = dayTicks(c.Labels)
	p.Y.Tick.Marker = countTicks{}
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	labels := uniqueLabels(c.Series)
	colors := map[string]int{} // #RRGGBB → series index
	top := 0.0
	plain, flagged := 0, 0
	for i, s := range c.Series {
		clr, width := palette[plain%len(palette)], vg.Points(1.75)
		if s.Highlight {
			clr, width = flagPalette[flagged%len(flagPalette)], vg.Points(3)
			flagged++
		} else {
			plain++
		}
		segs := segments(s.Values)
		if len(segs) == 0 {
			continue // nothing published: neither a line nor a legend entry
		}
		for _, seg := range segs {
			l, err := plotter.NewLine(seg)
			if err != nil {
				return rc, fmt.Errorf("report: chart %q: %w", c.Title, err)
			}
			l.Color, l.Width = clr, width
			p.Add(l)
			for _, pt := range seg {
				top = math.Max(top, pt.Y)
			}
		}
		hex := fmt.Sprintf("#%02X%02X%02X", clr.R, clr.G, clr.B)
		colors[hex] = i
		rc.Legend = append(rc.Legend, LegendEntry{Label: labels[i], Name: s.Name, Color: hex, Highlight: s.Highlight})
	}
	if len(rc.Legend) == 0 {
		return rc, nil
	}
	// The x axis always spans the whole period, withheld days included.
	p.X.Min, p.X.Max = 0, float64(max(len(c.Labels)-1, 1))
	p.Y.Max = max(top*1.08, 1)
	canvas := vgsvg.New(chartWidth, chartHeight)
	p.Draw(draw.New(canvas))
	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return rc, fmt.Errorf("report: chart %q: %w", c.Title, err)
	}
	rc.SVG = template.HTML(markSeries(buf.Bytes(), colors, c.Series, c.Title)) // #nosec: canvas output with escaped text
	return rc, nil
}

var (
	strokePath = regexp.MustCompile(`<path d="([^"]*)"\s+style="([^"]*stroke:(#[0-9A-F]{6})[^"]*)"\s*/>`)
	fontFamily = regexp.MustCompile(`font-family:[^;"]*`)
)

// markSeries makes the canvas's SVG fit for the page: no XML prolog, a
// size taken from the page (the viewBox keeps the proportions), text in
// the page's font, and each line of a series marked and titled.
func markSeries(svg []byte, colors map[string]int, series []ChartSeries, title string) string {
	if i := bytes.Index(svg, []byte("<svg")); i > 0 {
		svg = svg[i:]
	}
	s := string(svg)
	s = fontFamily.ReplaceAllString(s, "font-family:inherit")
	s = strokePath.ReplaceAllStringFunc(s, func(m string) string {
		sub := strokePath.FindStringSubmatch(m)
		i, ok := colors[sub[3]]
		if !ok {
			return m // an axis or the grid
		}
		return fmt.Sprintf(`<path class="series" data-series="%d" d="%s" style="%s"><title>%s</title></path>`,
			i, sub[1], sub[2], html.EscapeString(series[i].Name))
	})
	head := fmt.Sprintf(`<svg role="img" aria-label="%s" class="chart-svg" preserveAspectRatio="xMidYMid meet"`, html.EscapeString(title))
	return strings.Replace(s, "<svg", head, 1)
}

// uniqueLabels gives each series a short label that no other series of the
// chart shares: its Label, or its Name cut short, with as much of the full
// name added as it takes to tell two apart.
func uniqueLabels(series []ChartSeries) []string {
	out := make([]string, len(series))
	for i, s := range series {
		out[i] = cmp.Or(s.Label, shorten(s.Name, 40))
	}
	for i := range out {
		var same []int
		for j := range out {
			if out[j] == out[i] {
				same = append(same, j)
			}
		}
		if len(same) < 2 {
			continue
		}
		for n, j := range same {
			rest := strings.TrimPrefix(series[j].Name, cmp.Or(series[j].Label, ""))
			rest = strings.TrimLeft(rest, " ,·")
			if rest == "" {
				rest = fmt.Sprint(n + 1)
			}
			out[j] = out[j] + " · " + shorten(rest, 24)
		}
	}
	return out
}

// shorten cuts s to at most n characters, marking the cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func segments(vals []float64) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	for i, v := range vals {
		if math.IsNaN(v) {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, plotter.XY{X: float64(i), Y: v})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	// A single point draws nothing as a line: widen it to a short dash.
	for i, s := range out {
		if len(s) == 1 {
			out[i] = append(s, plotter.XY{X: s[0].X + 0.2, Y: s[0].Y})
		}
	}
	return out
}

func values(pts []Point) []float64 {
	v := make([]float64, len(pts))
	for i, p := range pts {
		if p.Installs == nil {
			v[i] = math.NaN()
		} else {
			v[i] = float64(*p.Installs)
		}
	}
	return v
}

func labels(pts []Point) []string {
	l := make([]string, len(pts))
	for i, p := range pts {
		l[i] = p.Period
	}
	return l
}

// hasPoint reports whether a daily series has a point to draw.
func hasPoint(pts []Point) bool {
	return slices.ContainsFunc(pts, func(p Point) bool { return p.Installs != nil })
}

// byInstalls orders rows by their published installations, most first;
// ties keep their order.
func byInstalls[T any](rows []T, installs func(T) int64) {
	slices.SortStableFunc(rows, func(a, b T) int { return cmp.Compare(installs(b), installs(a)) })
}

// Charts are the quality report's charts. The version and error charts
// show the values seen on the most installations among those that may be
// published, so that the largest problem is never left out.
func (q *Quality) Charts() []Chart {
	cs := []Chart{{Title: "Daily active installations", YLabel: "installations", Labels: labels(q.Active.Daily),
		Series: []ChartSeries{{Name: "all installations", Label: "all", Values: values(q.Active.Daily)}}}}

	var versions []DimRow
	for _, r := range q.Active.By {
		if r.Dimension == "version" && r.Installs != nil && hasPoint(r.Daily) {
			versions = append(versions, r)
		}
	}
	byInstalls(versions, func(r DimRow) int64 { return *r.Installs })
	vc := Chart{Title: "Daily active installations by version", YLabel: "installations", Labels: labels(q.Active.Daily)}
	for _, r := range versions[:min(len(versions), maxSeries)] {
		vc.Series = append(vc.Series, ChartSeries{Name: "version " + r.Value, Label: r.Value, Values: values(r.Daily)})
	}

	var errs []ErrorRow
	for _, e := range q.Errors {
		if e.Installs != nil && hasPoint(e.Daily) {
			errs = append(errs, e)
		}
	}
	byInstalls(errs, func(e ErrorRow) int64 { return *e.Installs })
	ec := Chart{Title: "Installations meeting each error", YLabel: "installations", Labels: labels(q.Active.Daily)}
	for _, e := range errs[:min(len(errs), maxSeries)] {
		ec.Series = append(ec.Series, ChartSeries{Name: fmt.Sprintf("%s %s at %s (%d installations in the period)", e.Type, e.Code, e.Control, *e.Installs),
			Label: e.Type + " " + e.Code, Values: values(e.Daily)})
	}
	return append(cs, vc, ec)
}

// certLine is what a threat chart needs of an issuer or signer row.
type certLine struct {
	subject  string
	installs *int64
	daily    []Point
	flagged  bool
}

// certChart draws the flagged certificates first and red, then the most
// widely seen.
func certChart(title string, labels []string, rows []certLine) Chart {
	c := Chart{Title: title, YLabel: "installations", Labels: labels}
	var shown []certLine
	for _, r := range rows {
		if hasPoint(r.daily) {
			shown = append(shown, r)
		}
	}
	slices.SortStableFunc(shown, func(a, b certLine) int {
		if a.flagged != b.flagged {
			if a.flagged {
				return -1
			}
			return 1
		}
		var na, nb int64
		if a.installs != nil {
			na = *a.installs
		}
		if b.installs != nil {
			nb = *b.installs
		}
		return cmp.Compare(nb, na)
	})
	for _, r := range shown[:min(len(shown), maxSeries)] {
		c.Series = append(c.Series, ChartSeries{Name: r.subject, Label: commonName(r.subject), Values: values(r.daily), Highlight: r.flagged})
	}
	return c
}

// Charts are the threat report's charts.
func (t *Threats) Charts() []Chart {
	var issuers, signers []certLine
	for _, r := range t.Issuers {
		issuers = append(issuers, certLine{r.Subject, r.Installs, r.Daily, len(r.Flags) > 0})
	}
	for _, r := range t.Signers {
		signers = append(signers, certLine{r.Subject, r.Installs, r.Daily, len(r.Flags) > 0})
	}
	days := dayLabels(t.From, t.To)
	return []Chart{certChart("Installations per TLS issuer", days, issuers), certChart("Installations per file signer", days, signers)}
}

func dayLabels(from, to string) []string { return days(from, to) }

// commonName is the CN of a distinguished name written CN=…,O=…, or the
// whole name when it has none.
func commonName(dn string) string {
	for _, part := range strings.Split(dn, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "CN="); ok && v != "" {
			return shorten(v, 40)
		}
	}
	return shorten(dn, 40)
}
