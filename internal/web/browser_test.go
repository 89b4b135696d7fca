package web_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var updateScreenshots = flag.Bool("screenshots", false, "write the browser test's screenshots to testdata/screenshots")

// chromium finds Debian's chromium; without it the browser test skips,
// unless the CI run demands every service.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("PROVISION_REQUIRE_SERVICES") == "1" {
		t.Fatal("chromium is not installed (Debian package chromium)")
	}
	t.Skip("chromium is not installed (Debian package chromium)")
	return ""
}

// layoutProbe measures, in the page, what the layout rules are about.
const layoutProbe = `(() => {
	const doc = document.documentElement;
	const svgs = [...document.querySelectorAll("figure.chart svg")];
	const wraps = [...document.querySelectorAll(".table-wrap")];
	const flags = document.querySelector("#flags");
	const font = el => el ? getComputedStyle(el).fontFamily : "";
	const tick = document.querySelector("figure.chart svg text");
	return {
		viewport: window.innerWidth,
		fold: window.innerHeight,
		scrollWidth: doc.scrollWidth,
		charts: document.querySelectorAll("figure.chart").length,
		svgs: svgs.length,
		seriesPerChart: svgs.map(s => s.querySelectorAll(".series").length),
		titledSeries: svgs.map(s => s.querySelectorAll(".series > title").length),
		chartWidths: svgs.map(s => Math.round(s.getBoundingClientRect().width)),
		mainWidth: Math.round(document.querySelector("section.report").getBoundingClientRect().width),
		wideTables: wraps.filter(w => w.scrollWidth > w.clientWidth + 1).map(w => w.querySelector("table").className),
		flagsTop: flags ? Math.round(flags.getBoundingClientRect().top) : -1,
		flagsBottom: flags ? Math.round(flags.getBoundingClientRect().bottom) : -1,
		bodyFont: font(document.body),
		chartFont: font(tick),
		legendTitles: [...document.querySelectorAll(".legend li")].map(li => li.title),
		legendLabels: [...document.querySelectorAll(".legend li")].map(li => li.textContent.trim()),
		// A pin is shown shortened but its cell holds it whole, for copying.
		ids: [...document.querySelectorAll("td.id code")].map(c =>
			c.textContent === c.title && c.textContent.length >= 40 && c.scrollWidth > c.clientWidth),
	};
})()`

type layout struct {
	Viewport, Fold, ScrollWidth int
	Charts, SVGs                int
	SeriesPerChart              []int
	TitledSeries                []int
	ChartWidths                 []int
	MainWidth                   int
	WideTables                  []string
	FlagsTop, FlagsBottom       int
	BodyFont, ChartFont         string
	LegendTitles, LegendLabels  []string
	IDs                         []bool
}

// checkLayout holds a page to the dashboard's layout rules.
func checkLayout(t *testing.T, page string, l layout) {
	t.Helper()
	where := fmt.Sprintf("%s at %d px", page, l.Viewport)
	if l.ScrollWidth > l.Viewport {
		t.Errorf("%s: the page is %d px wide, wider than the window", where, l.ScrollWidth)
	}
	if len(l.WideTables) > 0 {
		t.Errorf("%s: tables scroll sideways: %v", where, l.WideTables)
	}
	if l.SVGs == 0 {
		t.Errorf("%s: no chart drawn", where)
	}
	for i, n := range l.SeriesPerChart {
		if n == 0 {
			t.Errorf("%s: chart %d has no series", where, i+1)
		}
		if l.TitledSeries[i] != n {
			t.Errorf("%s: chart %d: %d of %d lines carry their full name", where, i+1, l.TitledSeries[i], n)
		}
		// Charts fill their grid cell: at most three to a row, none
		// much narrower than the size they are drawn at.
		if w := l.ChartWidths[i]; 4*w < l.MainWidth || w < 500 {
			t.Errorf("%s: chart %d is %d px wide in a %d px page", where, i+1, w, l.MainWidth)
		}
	}
	if l.FlagsTop < 0 || l.FlagsTop >= l.Fold {
		t.Errorf("%s: the flags start at %d px, below the fold (%d px)", where, l.FlagsTop, l.Fold)
	}
	if l.ChartFont != l.BodyFont {
		t.Errorf("%s: chart text in %q, the page in %q", where, l.ChartFont, l.BodyFont)
	}
	for i, ok := range l.IDs {
		if !ok {
			t.Errorf("%s: identifier cell %d is not shortened on screen with its whole value inside", where, i+1)
		}
	}
	if page == "threats" && len(l.IDs) == 0 {
		t.Errorf("%s: no identifier cells", where)
	}
	seen := map[string]bool{}
	for i, label := range l.LegendLabels {
		if l.LegendTitles[i] == "" {
			t.Errorf("%s: legend %q has no full name", where, label)
		}
		if seen[label] {
			t.Errorf("%s: two legend entries read %q", where, label)
		}
		seen[label] = true
	}
}

// shrink re-encodes a screenshot at the best PNG compression.
func shrink(t *testing.T, shot []byte) []byte {
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDashboardInBrowser signs in, reads the quality view, changes the
// version filter, reads the threat view, and holds both views to the
// layout rules at 1,280 and 1,920 px, with a screenshot of each.
func TestDashboardInBrowser(t *testing.T) {
	exe := chromium(t)
	srv, f := newServer(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancelTimeout := context.WithTimeout(ctx, 120*time.Second)
	defer cancelTimeout()

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("sign in", chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(srv.URL+"/dashboard/quality"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), token),
		chromedp.Click(css("#signin")),
		chromedp.WaitVisible(css("table.tasks")),
	))
	quality, err := chromedp.Run(ctx, chromedp.Text(css("main")))
	step("read quality", err)
	// The default period is the data's: the fleet's 21 days, not 30.
	from, err := chromedp.Run(ctx, chromedp.Value(css("#from")))
	step("read period", err)
	if want := f.Start.Format(time.DateOnly); from != want {
		t.Errorf("the default period starts on %s, the data on %s", from, want)
	}
	step("filter by version", chromedp.Do(ctx,
		chromedp.SetValue(css("#version"), "5.15.0"),
		chromedp.Click(css("#apply")),
		// Only the reloaded page carries the choice as an attribute.
		chromedp.WaitReady(css(`#version option[value="5.15.0"][selected]`)),
		chromedp.WaitVisible(css("table.tasks")),
	))
	// The rows past the first few are folded: read every part of the table.
	filtered, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("table.active_by")].map(t => t.textContent).join("\n")`))
	step("read filtered", err)
	step("open threats", chromedp.Do(ctx,
		chromedp.Click(css("#nav-threats")),
		chromedp.WaitVisible(css("table.tls_issuers")),
	))
	threats, err := chromedp.Run(ctx, chromedp.Text(css("main")))
	step("read threats", err)
	if !strings.Contains(quality, "failing_campaign") || !strings.Contains(quality, f.Planted.FailingCampaign) {
		t.Error("quality view lacks the failing campaign flag")
	}
	if !strings.Contains(filtered, "5.15.0") || strings.Contains(filtered, "5.14.0") {
		t.Errorf("version filter not applied in the browser: %q", filtered)
	}
	for _, want := range []string{"interception_spreading", "signer_sudden"} {
		if !strings.Contains(threats, want) {
			t.Errorf("threat view lacks %s", want)
		}
	}

	artifacts := os.Getenv("PROVISION_ARTIFACTS")
	for _, size := range [][2]int64{{1280, 800}, {1920, 1080}} {
		for _, page := range []string{"quality", "threats"} {
			step("open "+page, chromedp.Do(ctx,
				chromedp.EmulateViewport(size[0], size[1]),
				chromedp.Navigate(srv.URL+"/dashboard/"+page),
				chromedp.WaitVisible(css("#flags")),
			))
			l, err := chromedp.Run(ctx, chromedp.Evaluate[layout](layoutProbe))
			step("measure "+page, err)
			checkLayout(t, page, l)
			t.Logf("%s at %d px: page %d px wide, charts %v px with %v series, flags at %d–%d px",
				page, size[0], l.ScrollWidth, l.ChartWidths, l.SeriesPerChart, l.FlagsTop, l.FlagsBottom)

			name := fmt.Sprintf("%s-%d.png", page, size[0])
			fold, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			step("screenshot "+name, err)
			if *updateScreenshots {
				if err := os.WriteFile(filepath.Join("testdata", "screenshots", name), shrink(t, fold), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if artifacts != "" {
				full, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
				step("full screenshot "+name, err)
				if err := os.WriteFile(filepath.Join(artifacts, "full-"+name), full, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}
