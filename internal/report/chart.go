package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"

	"gonum.org/v1/plot"
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
	Name      string
	Values    []float64
	Highlight bool // flagged: drawn thick and red
}

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff},
	color.RGBA{0x8c, 0x56, 0x4b, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, color.RGBA{0x17, 0xbe, 0xcf, 0xff},
}

var flagColor = color.RGBA{0xd6, 0x27, 0x28, 0xff}

// dayTicks labels about eight evenly spread x positions.
type dayTicks []string

func (d dayTicks) Ticks(lo, hi float64) []plot.Tick {
	step := max(1, len(d)/8)
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

// SVG renders c as an inline SVG document.
func (c Chart) SVG() (template.HTML, error) {
	p := plot.New()
	p.Title.Text = c.Title
	p.Y.Label.Text = c.YLabel
	p.X.Tick.Marker = dayTicks(c.Labels)
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	drawn := false
	for i, s := range c.Series {
		clr := palette[i%len(palette)]
		width := vg.Points(1.5)
		if s.Highlight {
			clr, width = flagColor, vg.Points(3)
		}
		legend := false
		for _, seg := range segments(s.Values) {
			l, err := plotter.NewLine(seg)
			if err != nil {
				return "", fmt.Errorf("report: chart %q: %w", c.Title, err)
			}
			l.Color, l.Width = clr, width
			p.Add(l)
			if !legend {
				p.Legend.Add(s.Name, l)
				legend = true
			}
			drawn = true
		}
	}
	if !drawn {
		p.X.Min, p.X.Max, p.Y.Max = 0, float64(max(len(c.Labels)-1, 1)), 1
	}
	canvas := vgsvg.New(18*vg.Centimeter, 8*vg.Centimeter)
	p.Draw(draw.New(canvas))
	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("report: chart %q: %w", c.Title, err)
	}
	out := buf.Bytes()
	// Inline in HTML: drop the XML prolog.
	if i := bytes.Index(out, []byte("<svg")); i > 0 {
		out = out[i:]
	}
	return template.HTML(out), nil // #nosec: produced by the SVG canvas from escaped text
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

// maxSeries keeps charts readable.
const maxSeries = 6

// Charts are the quality report's charts.
func (q *Quality) Charts() []Chart {
	cs := []Chart{{Title: "Daily active installations", YLabel: "installations", Labels: labels(q.Active.Daily),
		Series: []ChartSeries{{Name: "all", Values: values(q.Active.Daily)}}}}
	ec := Chart{Title: "Installations meeting each error", YLabel: "installations", Labels: labels(q.Active.Daily)}
	for _, e := range q.Errors {
		if e.Installs != nil && len(ec.Series) < maxSeries {
			ec.Series = append(ec.Series, ChartSeries{Name: e.Type + " " + e.Code, Values: values(e.Daily)})
		}
	}
	return append(cs, ec)
}

// Charts are the threat report's charts: flagged lines first and red.
func (t *Threats) Charts() []Chart {
	ic := Chart{Title: "Installations per TLS issuer", YLabel: "installations", Labels: dayLabels(t.From, t.To)}
	for _, pass := range []bool{true, false} {
		for _, r := range t.Issuers {
			if (len(r.Flags) > 0) == pass && len(ic.Series) < maxSeries {
				ic.Series = append(ic.Series, ChartSeries{Name: short(r.Subject), Values: values(r.Daily), Highlight: pass})
			}
		}
	}
	sc := Chart{Title: "Installations per file signer", YLabel: "installations", Labels: dayLabels(t.From, t.To)}
	for _, pass := range []bool{true, false} {
		for _, r := range t.Signers {
			if (len(r.Flags) > 0) == pass && len(sc.Series) < maxSeries {
				sc.Series = append(sc.Series, ChartSeries{Name: short(r.Subject), Values: values(r.Daily), Highlight: pass})
			}
		}
	}
	return []Chart{ic, sc}
}

func dayLabels(from, to string) []string { return days(from, to) }

func short(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
