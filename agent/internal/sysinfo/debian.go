package sysinfo

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// On Debian-like systems the OS's update packages are the installed
// package versions that the security and updates suites published: the
// base release's own packages are the OS, not updates to it, and the
// applications a person installed from elsewhere are neither. dpkg's
// status file says what is installed; apt's lists say which suite
// publishes which version, and each list's Release file names its suite.

// Bounds on apt's files. The security and updates suites' indexes are a few
// MB; a release's main index, never read here, is about 50 MB.
const (
	maxReleaseSize    = 1 << 20
	maxCompressedSize = 32 << 20
	maxStanzaLine     = 1 << 20
)

// maxPackagesSize bounds an index after decompression; a variable so that
// a test can show the bound without inflating 64 MB.
var maxPackagesSize int64 = 64 << 20

// debKey identifies one installed binary package; the architecture keeps
// multi-arch packages (libc6:amd64 and libc6:i386) apart.
type debKey struct{ name, arch string }

// DebPackage is one installed package version from dpkg's status file.
type DebPackage struct {
	Name, Architecture, Version string
}

// ParseDpkgInstalled reads dpkg's status file and returns the installed
// packages.
func ParseDpkgInstalled(r io.Reader) ([]DebPackage, error) {
	var out []DebPackage
	err := stanzas(io.LimitReader(r, MaxFileSize), func(f map[string]string) bool {
		if strings.HasSuffix(f["Status"], " installed") && f["Package"] != "" && f["Version"] != "" {
			out = append(out, DebPackage{f["Package"], f["Architecture"], f["Version"]})
		}
		return true
	}, "Package", "Version", "Architecture", "Status")
	if err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	return out, nil
}

// AptRelease is what a Release or InRelease file says about its suite.
type AptRelease struct {
	Origin, Label, Suite, Codename string
}

// Updates tells whether the suite publishes updates to a release: Debian's
// and Ubuntu's -security and -updates suites, and the security archive of
// Debian 10 and older, whose suite was called "buster/updates".
func (r AptRelease) Updates() bool {
	for _, s := range []string{r.Suite, r.Codename} {
		if strings.HasSuffix(s, "-security") || strings.HasSuffix(s, "-updates") || strings.HasSuffix(s, "/updates") {
			return true
		}
	}
	return r.Label == "Debian-Security"
}

// ParseAptRelease reads the header of a Release file, or of an InRelease
// file (the same text, clear-signed).
func ParseAptRelease(r io.Reader) (AptRelease, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxReleaseSize))
	sc.Buffer(make([]byte, 4096), maxStanzaLine)
	var rel AptRelease
	signed, inBody := false, true
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "-----BEGIN PGP SIGNED MESSAGE-----":
			signed, inBody = true, false
			continue
		case signed && !inBody:
			inBody = line == "" // the armour headers end with a blank line
			continue
		case strings.HasPrefix(line, "-----BEGIN PGP SIGNATURE"):
			return rel.valid()
		case line == "" || line[0] == ' ' || line[0] == '\t':
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Origin":
			rel.Origin = v
		case "Label":
			rel.Label = v
		case "Suite":
			rel.Suite = v
		case "Codename":
			rel.Codename = v
		case "MD5Sum", "SHA1", "SHA256", "SHA512":
			return rel.valid() // the file lists follow; the header is done
		}
	}
	if err := sc.Err(); err != nil {
		return AptRelease{}, fmt.Errorf("apt release: %w", err)
	}
	return rel.valid()
}

func (r AptRelease) valid() (AptRelease, error) {
	if r.Suite == "" && r.Codename == "" {
		return AptRelease{}, errors.New("apt release: neither Suite nor Codename")
	}
	return r, nil
}

// DebianUpdates returns, as name=version, the installed packages whose
// installed version is published by a security or updates suite in apt's
// lists directory. Lists of other suites are not opened.
func DebianUpdates(lists fs.FS, installed []DebPackage) ([]string, error) {
	want := make(map[debKey]string, len(installed))
	for _, p := range installed {
		want[debKey{p.Name, p.Architecture}] = p.Version
	}
	indexes, err := updateIndexes(lists)
	if err != nil {
		return nil, err
	}
	found := map[debKey]bool{}
	for _, name := range indexes {
		if err := matchIndex(lists, name, want, found); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(found))
	for k := range found {
		out = append(out, k.name+"="+want[k])
	}
	slices.Sort(out)
	return out, nil
}

// updateIndexes finds the Packages indexes of the update suites. apt names
// each list file after its URI with "/" turned into "_", so an index
// belongs to the Release file whose name, less "InRelease" or "Release",
// is its longest prefix.
func updateIndexes(lists fs.FS) ([]string, error) {
	entries, err := fs.ReadDir(lists, ".")
	if err != nil {
		return nil, fmt.Errorf("apt lists: %w", err)
	}
	releases := map[string]bool{} // prefix → publishes updates
	var indexes []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		var prefix string
		switch {
		case strings.HasSuffix(name, "_InRelease"):
			prefix = strings.TrimSuffix(name, "InRelease")
		case strings.HasSuffix(name, "_Release"):
			prefix = strings.TrimSuffix(name, "Release")
		default:
			if base, _ := splitCompression(name); strings.HasSuffix(base, "_Packages") {
				indexes = append(indexes, name)
			}
			continue
		}
		rel, err := readRelease(lists, name)
		if err != nil {
			// One unreadable Release costs that suite, not the rest.
			continue
		}
		releases[prefix] = releases[prefix] || rel.Updates()
	}
	var out []string
	for _, idx := range indexes {
		best := ""
		for p := range releases {
			if strings.HasPrefix(idx, p) && len(p) > len(best) {
				best = p
			}
		}
		if best != "" && releases[best] {
			out = append(out, idx)
		}
	}
	slices.Sort(out)
	return out, nil
}

func readRelease(lists fs.FS, name string) (AptRelease, error) {
	f, err := lists.Open(name)
	if err != nil {
		return AptRelease{}, err
	}
	defer f.Close()
	return ParseAptRelease(f)
}

// matchIndex streams one Packages index and marks the installed packages
// whose installed version it lists.
func matchIndex(lists fs.FS, name string, want map[debKey]string, found map[debKey]bool) error {
	f, err := lists.Open(name)
	if err != nil {
		return fmt.Errorf("apt lists: %w", err)
	}
	defer f.Close()
	r, err := decompress(io.LimitReader(f, maxCompressedSize), name)
	if err != nil {
		return fmt.Errorf("apt lists %s: %w", name, err)
	}
	lr := &io.LimitedReader{R: r, N: maxPackagesSize + 1}
	err = stanzas(lr, func(s map[string]string) bool {
		k := debKey{s["Package"], s["Architecture"]}
		if v, ok := want[k]; ok && v == s["Version"] {
			found[k] = true
		}
		return true
	}, "Package", "Version", "Architecture")
	if lr.N <= 0 {
		return fmt.Errorf("apt lists %s: larger than %d bytes", name, maxPackagesSize)
	}
	if err != nil {
		return fmt.Errorf("apt lists %s: %w", name, err)
	}
	return nil
}

// splitCompression separates the compression suffix apt may give a list
// (Acquire::GzipIndexes keeps them compressed).
func splitCompression(name string) (base, ext string) {
	for _, ext := range []string{".gz", ".lz4", ".xz", ".zst"} {
		if strings.HasSuffix(name, ext) {
			return strings.TrimSuffix(name, ext), ext
		}
	}
	return name, ""
}

func decompress(r io.Reader, name string) (io.Reader, error) {
	switch _, ext := splitCompression(name); ext {
	case ".gz":
		return gzip.NewReader(r)
	case ".lz4":
		return lz4.NewReader(r), nil
	case ".xz":
		return xz.NewReader(r)
	case ".zst":
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxPackagesSize)))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return r, nil
}

// stanzas reads deb822 paragraphs (dpkg's status file, apt's Packages
// indexes) and calls fn with the wanted fields of each, until fn returns
// false. Continuation lines of multi-line fields are skipped.
func stanzas(r io.Reader, fn func(map[string]string) bool, fields ...string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxStanzaLine)
	cur := make(map[string]string, len(fields))
	flush := func() bool {
		if len(cur) == 0 {
			return true
		}
		more := fn(cur)
		clear(cur)
		return more
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			if !flush() {
				return nil
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		for _, f := range fields {
			if string(k) == f {
				cur[f] = string(bytes.TrimSpace(v))
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	flush()
	return nil
}
