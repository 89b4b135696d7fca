//go:build linux

package sysinfo

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDebianUpdatesOnThisSystem checks the reader against apt itself:
// `apt list --installed` names, for every installed package, the suites
// that publish its installed version.
func TestDebianUpdatesOnThisSystem(t *testing.T) {
	apt, err := exec.LookPath("apt")
	if err != nil {
		t.Skip("not a Debian-like system")
	}
	entries, _ := os.ReadDir(aptListsDir)
	if !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.Contains(e.Name(), "_Packages") }) {
		t.Fatal("apt has no package lists here; run apt-get update once")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, apt, "list", "--installed").Output()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for line := range strings.Lines(string(out)) {
		// name/suite1,suite2,now version arch [installed,...]
		f := strings.Fields(line)
		name, suites, ok := strings.Cut(f[0], "/")
		if !ok || len(f) < 3 {
			continue
		}
		for s := range strings.SplitSeq(suites, ",") {
			if strings.HasSuffix(s, "-security") || strings.HasSuffix(s, "-updates") {
				want = append(want, name+"="+f[1])
				break
			}
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)

	got, err := linuxUpdates()
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("apt names no installed package from a security or updates suite; the comparison would prove nothing")
	}
	if !slices.Equal(normalizeUpdates(got), want) {
		t.Fatalf("reader: %d updates, apt: %d\nreader %v\napt    %v", len(got), len(want), got, want)
	}
	sys, err := Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sys.UpdatePackages, want) {
		t.Fatalf("Collect sends %d update packages, apt names %d", len(sys.UpdatePackages), len(want))
	}
	t.Logf("%d installed packages came from security or updates suites, e.g. %s", len(want), want[0])
}
