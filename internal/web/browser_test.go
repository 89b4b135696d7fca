package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

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

// TestDashboardInBrowser signs in, reads the quality view, changes the
// version filter, reads the threat view and saves a screenshot.
func TestDashboardInBrowser(t *testing.T) {
	exe := chromium(t)
	srv, f := newServer(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1400, 1800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("sign in", chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/dashboard/quality"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), token),
		chromedp.Click(css("#signin")),
		chromedp.WaitVisible(css("table.tasks")),
	))
	quality, err := chromedp.Run(ctx, chromedp.Text(css("main")))
	step("read quality", err)
	qualityShot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	step("screenshot quality", err)
	step("filter by version", chromedp.Do(ctx,
		chromedp.SetValue(css("#version"), "5.15.0"),
		chromedp.Click(css("#apply")),
		// Only the reloaded page carries the choice as an attribute.
		chromedp.WaitReady(css(`#version option[value="5.15.0"][selected]`)),
		chromedp.WaitVisible(css("table.tasks")),
	))
	filtered, err := chromedp.Run(ctx, chromedp.Text(css("table.active_by")))
	step("read filtered", err)
	step("open threats", chromedp.Do(ctx,
		chromedp.Click(css("#nav-threats")),
		chromedp.WaitVisible(css("table.tls_issuers")),
	))
	threats, err := chromedp.Run(ctx, chromedp.Text(css("main")))
	step("read threats", err)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	step("screenshot", err)
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
	dir := os.Getenv("PROVISION_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	for name, png := range map[string][]byte{"dashboard-quality.png": qualityShot, "dashboard-threats.png": shot} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	}
}
