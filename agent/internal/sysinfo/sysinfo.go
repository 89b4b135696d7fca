// Package sysinfo reads what the operating system says about itself: its
// family, version, edition, build, architecture and installed updates. Each
// platform has its own reader behind a build tag; the parsers of what those
// readers find are plain functions so that every platform's parser is
// tested everywhere on recorded fixtures.
package sysinfo

import (
	"context"
	"slices"
	"strings"
)

// OS is what the operating system reports, in the manifest's terms.
type OS struct {
	Type           string   // windows, macos, linux
	Version        string   // such as "11 23H2", "14.5" or "12 (bookworm)"
	Edition        string   // such as "Professional" or "Debian GNU/Linux"
	Build          string   // such as "22631.3447", "23F79" or a kernel release
	Architecture   string   // amd64, arm64, 386, arm, other
	UpdatePackages []string // installed OS updates, sorted
}

// Limits on what the readers take in, so a damaged or hostile file costs
// little.
const (
	MaxFileSize    = 32 << 20 // dpkg status files are a few MB
	MaxUpdates     = 2000     // the manifest's max_items for os.update_packages
	MaxUpdateLen   = 128      // the manifest's max_length for one update id
	maxFieldLength = 64
)

// Collect reads the running system.
func Collect(ctx context.Context) (OS, error) { return collect(ctx) }

// Architecture maps the names kernels and Go use to the manifest's values.
func Architecture(name string) string {
	switch strings.ToLower(name) {
	case "amd64", "x86_64", "x64":
		return "amd64"
	case "arm64", "aarch64":
		return "arm64"
	case "386", "i386", "i486", "i586", "i686", "x86":
		return "386"
	case "arm", "armv6l", "armv7l", "armhf":
		return "arm"
	}
	return "other"
}

// normalizeUpdates sorts, deduplicates and bounds a list of update ids.
func normalizeUpdates(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = clipField(strings.TrimSpace(s), MaxUpdateLen)
		if s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxUpdates {
		out = out[:MaxUpdates]
	}
	return out
}

// clipField keeps a value within a manifest length bound, on a character
// boundary, and drops control characters.
func clipField(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	n := 0
	for i := range s {
		if n == max {
			return s[:i]
		}
		n++
	}
	return s
}
