package report

import (
	"github.com/google/differential-privacy/go/v3/noise"
)

// Privacy states the parameters a report was made with.
type Privacy struct {
	K               int     `json:"k"`
	ContributionCap int64   `json:"contribution_cap"`
	Noise           string  `json:"noise"`
	Epsilon         float64 `json:"epsilon,omitempty"`
	Delta           float64 `json:"delta"`
	L0Sensitivity   int64   `json:"l0_sensitivity,omitempty"`
	LInfSensitivity int64   `json:"linf_sensitivity,omitempty"`
	Note            string  `json:"note"`
}

func privacyOf(o Options) Privacy {
	p := Privacy{K: o.K, ContributionCap: o.ContributionCap, Noise: "none"}
	p.Note = "Every figure counts distinct installations or comes from a cell whose distinct installations reach k; rows of cells below k are left out whole, label and figures, and counted as withheld; a period of a series below k is marked suppressed. Installation counts change by at most 1 when one installation is added or removed; occurrence counts are capped per record at contribution_cap."
	if o.Epsilon > 0 {
		p.Noise = "laplace"
		p.Epsilon = o.Epsilon
		p.L0Sensitivity = 1
		p.LInfSensitivity = 1
		p.Note += " Laplace noise with the stated epsilon is added to each count independently (sensitivity 1 for installation counts, contribution_cap for occurrence counts); figures from the same installations compose, so the privacy loss of the whole report is the sum over the figures an installation contributes to. Thresholding uses exact counts."
	}
	return p
}

// noiser adds calibrated noise to published installation counts.
type noiser struct {
	epsilon float64
}

func newNoiser(epsilon float64) noiser { return noiser{epsilon: epsilon} }

func (n noiser) count(v, lInf int64) (int64, bool) {
	if n.epsilon <= 0 {
		return v, true
	}
	out, err := noise.Laplace().AddNoiseInt64(v, 1, max(lInf, 1), n.epsilon, 0)
	if err != nil {
		return 0, false
	}
	return max(out, 0), true
}

// published is the proof that a cell reached k. Options.publish is the one
// place that decides it, and every row of every table is built from one:
// its label, its figures and anything derived from them. A cell below k
// yields none, so no renderer (JSON, CSV, Markdown, HTML, charts, the
// dashboard) has anything of it to print — not its figures, not its label,
// not the fact that it is non-empty.
type published struct {
	installs int64 // exact distinct installations, for decisions within published cells
	count    int64 // the installations figure to print, noised when asked
}

// publish decides whether a cell with installs distinct installations may be
// published.
func (o Options) publish(installs int64) (published, bool) {
	if installs < int64(o.K) {
		return published{}, false
	}
	v, ok := o.noise.count(installs, 1)
	if !ok {
		return published{}, false // never publish less safely than asked
	}
	return published{installs: installs, count: v}, true
}

// installations is the published cell's installations figure.
func (p published) installations() *int64 {
	v := p.count
	return &v
}

// figure is another count of the published cell (occurrences, tasks,
// failures), whose one-installation sensitivity is lInf.
func (o Options) figure(_ published, value, lInf int64) *int64 {
	v, ok := o.noise.count(value, lInf)
	if !ok {
		return nil
	}
	return &v
}
