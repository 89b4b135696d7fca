package sysinfo

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pierrec/lz4/v4"

	"github.com/provisionhq/provision/internal/manifest"
)

func TestDebianUpdatesFromCapturedLists(t *testing.T) {
	installed, err := ParseDpkgInstalled(bytes.NewReader(read(t, "dpkg-status")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DebianUpdates(os.DirFS("testdata/apt-lists"), installed)
	if err != nil {
		t.Fatal(err)
	}
	// git's installed version is in bookworm-security (lz4) and libc6's in
	// bookworm-updates (zstd). Not updates: curl (its installed version is
	// only in the base suite, the security suite has a newer one), bash
	// (base suite only), coreutils (a list with no Release file), libssl3
	// (installed for i386, the suite lists amd64), removed-thing (only its
	// configuration files remain).
	want := []string{"git=1:2.39.5-0+deb12u3", "libc6=2.36-9+deb12u14"}
	if !slices.Equal(got, want) {
		t.Fatalf("updates = %v, want %v", got, want)
	}
}

func TestAptReleaseSuites(t *testing.T) {
	cases := []struct {
		header  string
		updates bool
	}{
		{"Origin: Debian\nLabel: Debian-Security\nSuite: oldstable-security\nCodename: bookworm-security\n", true},
		{"Origin: Debian\nLabel: Debian\nSuite: stable-updates\nCodename: trixie-updates\n", true},
		{"Origin: Ubuntu\nLabel: Ubuntu\nSuite: noble-security\nCodename: noble\n", true},
		{"Origin: Ubuntu\nLabel: Ubuntu\nSuite: noble-updates\nCodename: noble\n", true},
		// Debian 10's security archive called its suite buster/updates.
		{"Origin: Debian\nLabel: Debian-Security\nSuite: oldoldstable\nCodename: buster\n", true},
		{"Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: trixie\n", false},
		{"Origin: Debian Backports\nLabel: Debian Backports\nSuite: stable-backports\nCodename: trixie-backports\n", false},
		{"Origin: Ubuntu\nLabel: Ubuntu\nSuite: noble-proposed\nCodename: noble\n", false},
	}
	for _, c := range cases {
		rel, err := ParseAptRelease(strings.NewReader(c.header + "SHA256:\n 0 0 main/binary-amd64/Packages\nSuite: misleading-security\n"))
		if err != nil {
			t.Fatal(err)
		}
		if rel.Updates() != c.updates {
			t.Errorf("%q: updates = %v", c.header, rel.Updates())
		}
	}
	if _, err := ParseAptRelease(strings.NewReader("Date: today\n")); err == nil {
		t.Error("a Release without Suite or Codename was accepted")
	}
	signed, err := ParseAptRelease(bytes.NewReader(read(t, "apt-lists/deb.debian.org_debian-security_dists_bookworm-security_InRelease")))
	if err != nil || signed.Codename != "bookworm-security" || signed.Label != "Debian-Security" {
		t.Errorf("InRelease: %+v, %v", signed, err)
	}
}

func TestAptIndexBoundedAfterDecompression(t *testing.T) {
	// A small lz4 file that inflates past the bound is refused, not read.
	defer func(n int64) { maxPackagesSize = n }(maxPackagesSize)
	maxPackagesSize = 1 << 20
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	line := []byte("Package: x\nVersion: 1\nArchitecture: amd64\n\n")
	for n := int64(0); n <= maxPackagesSize; n += int64(len(line)) {
		w.Write(line)
	}
	w.Close()
	if buf.Len() > 64<<10 {
		t.Fatalf("test index compressed to %d bytes", buf.Len())
	}
	lists := fstest.MapFS{
		"h_dists_s-security_InRelease":                      {Data: []byte("Suite: s-security\n")},
		"h_dists_s-security_main_binary-amd64_Packages.lz4": {Data: buf.Bytes()},
	}
	_, err := DebianUpdates(lists, []DebPackage{{"x", "amd64", "1"}})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestUpdateBoundsAreTheManifests(t *testing.T) {
	it := manifest.Reference().Item("os.update_packages")
	if it == nil || it.Type.Of == nil {
		t.Fatal("the reference manifest has no os.update_packages list")
	}
	if it.Type.MaxItems != MaxUpdates || it.Type.Of.MaxLength != MaxUpdateLen {
		t.Fatalf("manifest bounds %d items of %d, the reader keeps %d of %d", it.Type.MaxItems, it.Type.Of.MaxLength, MaxUpdates, MaxUpdateLen)
	}
}
