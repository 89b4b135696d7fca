package sysinfo

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"howett.net/plist"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLinuxOSFromRecordedOSRelease(t *testing.T) {
	cases := []struct{ file, version, edition string }{
		{"os-release-debian", "12 (bookworm)", "Debian GNU/Linux"},
		{"os-release-ubuntu", "24.04 LTS (Noble Numbat)", "Ubuntu"},
		{"os-release-fedora", "40 (Workstation Edition)", "Fedora Linux Workstation Edition"},
		{"os-release-arch", "rolling", "Arch Linux"},
	}
	for _, c := range cases {
		rel, err := ParseOSRelease(bytes.NewReader(read(t, c.file)))
		if err != nil {
			t.Fatal(err)
		}
		got := LinuxOS(rel, "6.1.0-18-amd64", "x86_64", nil)
		if got.Type != "linux" || got.Version != c.version || got.Edition != c.edition || got.Build != "6.1.0-18-amd64" || got.Architecture != "amd64" {
			t.Errorf("%s: %+v", c.file, got)
		}
	}
}

func windowsFixture(t *testing.T, name string) WindowsVersion {
	var raw struct {
		ProductName, EditionID, DisplayVersion, ReleaseId, CurrentBuildNumber, CurrentVersion string
		UBR, CurrentMajorVersionNumber                                                        uint64
	}
	if err := json.Unmarshal(read(t, name), &raw); err != nil {
		t.Fatal(err)
	}
	return WindowsVersion{raw.ProductName, raw.EditionID, raw.DisplayVersion, raw.ReleaseId, raw.CurrentBuildNumber, raw.UBR, raw.CurrentMajorVersionNumber, raw.CurrentVersion}
}

func TestWindowsFromRecordedRegistry(t *testing.T) {
	kbs := Hotfixes(parseRegQuery(t, read(t, "windows_cbs_currentstate.txt")))
	// Installed (0x70) and permanent (0x80) packages only: superseded,
	// resolved and uninstall-pending ones stay out.
	if want := []string{"KB5012170", "KB5036893", "KB5037591"}; !slices.Equal(kbs, want) {
		t.Fatalf("hotfixes = %v, want %v", kbs, want)
	}
	w11 := WindowsOS(windowsFixture(t, "windows11_currentversion.json"), "amd64", kbs)
	if w11.Version != "11 23H2" || w11.Edition != "Professional" || w11.Build != "22631.3447" || w11.Type != "windows" || len(w11.UpdatePackages) != 3 {
		t.Errorf("windows 11: %+v", w11)
	}
	w10 := WindowsOS(windowsFixture(t, "windows10_1909_currentversion.json"), "arm64", nil)
	if w10.Version != "10 1909" || w10.Build != "18363.1556" || w10.Architecture != "arm64" {
		t.Errorf("windows 10: %+v", w10)
	}
}

// parseRegQuery reads what `reg query "HKLM\...\Component Based
// Servicing\Packages" /s /v CurrentState` prints: a key line, then its
// value lines (name, type, data).
func parseRegQuery(t testing.TB, out []byte) []CBSPackage {
	t.Helper()
	var list []CBSPackage
	for line := range strings.Lines(string(out)) {
		line = strings.TrimRight(line, "\r\n")
		if key, ok := strings.CutPrefix(line, `HKEY_LOCAL_MACHINE\`); ok {
			list = append(list, CBSPackage{Name: key[strings.LastIndexByte(key, '\\')+1:]})
			continue
		}
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "CurrentState" && f[1] == "REG_DWORD" && len(list) > 0 {
			n, err := strconv.ParseUint(f[2], 0, 32)
			if err != nil {
				t.Fatal(err)
			}
			list[len(list)-1].CurrentState = uint32(n)
		}
	}
	if len(list) == 0 {
		t.Fatal("no keys in the reg query output")
	}
	return list
}

func TestMacOSFromRecordedFiles(t *testing.T) {
	v, err := ParseSwVers(read(t, "sw_vers_sonoma.txt"))
	if err != nil {
		t.Fatal(err)
	}
	updates, err := ParseInstallHistory(read(t, "InstallHistory.plist"))
	if err != nil {
		t.Fatal(err)
	}
	got := MacOS(v, "arm64", updates)
	want := []string{"XProtectPlistConfigData 5285", "macOS Sonoma 14.4", "macOS Sonoma 14.4.1", "macOS Sonoma 14.5"}
	if got.Version != "14.5" || got.Build != "23F79" || got.Edition != "macOS" || !slices.Equal(got.UpdatePackages, want) {
		t.Errorf("macOS: %+v", got)
	}
	// The same history in binary form, as newer releases write it.
	var records []map[string]any
	if _, err := plist.Unmarshal(read(t, "InstallHistory.plist"), &records); err != nil {
		t.Fatal(err)
	}
	bin, err := plist.Marshal(records, plist.BinaryFormat)
	if err != nil {
		t.Fatal(err)
	}
	if u2, err := ParseInstallHistory(bin); err != nil || len(u2) != 4 {
		t.Errorf("binary plist: %v, %v", u2, err)
	}
	if _, err := ParseSwVers([]byte("garbage")); err == nil {
		t.Error("sw_vers garbage accepted")
	}
}

func TestBoundsAndCleaning(t *testing.T) {
	long := strings.Repeat("é", 300)
	in := []string{long, "b\x00ad", "a", "a", ""}
	got := normalizeUpdates(in)
	if len(got) != 3 || got[0] != "a" || got[1] != "bad" || len([]rune(got[2])) != MaxUpdateLen {
		t.Fatalf("got %q", got)
	}
	many := make([]string, 3000)
	for i := range many {
		many[i] = strings.Repeat("x", i%200+1) + string(rune('a'+i%26))
	}
	if n := len(normalizeUpdates(many)); n > MaxUpdates {
		t.Fatalf("%d updates kept", n)
	}
}

func TestCollectReadsThisSystem(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the Linux reader runs here; others are covered by fixtures")
	}
	got, err := Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != "linux" || got.Version == "" || got.Build == "" || got.Architecture == "" {
		t.Fatalf("%+v", got)
	}
	t.Logf("%s %s %s %s, %d update packages", got.Edition, got.Version, got.Build, got.Architecture, len(got.UpdatePackages))
}

func FuzzParsers(f *testing.F) {
	for _, name := range []string{"os-release-debian", "dpkg-status", "sw_vers_sonoma.txt", "InstallHistory.plist", "apt-lists/deb.debian.org_debian_dists_bookworm_InRelease"} {
		f.Add(read(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseOSRelease(bytes.NewReader(data))
		_, _ = ParseDpkgInstalled(bytes.NewReader(data))
		_, _ = ParseAptRelease(bytes.NewReader(data))
		_, _ = ParseSwVers(data)
		_, _ = ParseInstallHistory(data)
		_ = Hotfixes([]CBSPackage{{Name: string(data), CurrentState: cbsInstalled}})
		// An index of an update suite, as apt stores it uncompressed.
		lists := fstest.MapFS{
			"h_dists_s_InRelease":                     {Data: []byte("Suite: s-security\n")},
			"h_dists_s_main_binary-amd64_Packages":    {Data: data},
			"h_dists_s_main_binary-amd64_Packages.gz": {Data: data},
		}
		_, _ = DebianUpdates(lists, []DebPackage{{"git", "amd64", "1:2.39.5-0+deb12u3"}})
	})
}
