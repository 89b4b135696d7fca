package sysinfo

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// WindowsVersion holds the values of
// HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion that describe the
// release.
type WindowsVersion struct {
	ProductName               string
	EditionID                 string
	DisplayVersion            string // such as 23H2; empty before 20H2
	ReleaseID                 string // such as 2004; older releases
	CurrentBuildNumber        string
	UBR                       uint64 // update build revision
	CurrentMajorVersionNumber uint64
	CurrentVersion            string // such as 6.3 on old releases
}

// WindowsOS builds the OS description from the registry values, the
// processor architecture and the installed update ids.
func WindowsOS(v WindowsVersion, arch string, updates []string) OS {
	major := ""
	switch {
	case v.CurrentMajorVersionNumber == 10:
		major = "10"
		// Windows 11 still calls itself Windows 10 in ProductName; the
		// build number tells them apart.
		if b, err := strconv.Atoi(v.CurrentBuildNumber); err == nil && b >= 22000 {
			major = "11"
		}
	case v.CurrentMajorVersionNumber != 0:
		major = strconv.FormatUint(v.CurrentMajorVersionNumber, 10)
	default:
		major = v.CurrentVersion
	}
	release := v.DisplayVersion
	if release == "" {
		release = v.ReleaseID
	}
	version := strings.TrimSpace(major + " " + release)
	if version == "" {
		version = "unknown"
	}
	build := v.CurrentBuildNumber
	if build != "" && v.UBR != 0 {
		build = fmt.Sprintf("%s.%d", build, v.UBR)
	}
	return OS{
		Type:           "windows",
		Version:        clipField(version, maxFieldLength),
		Edition:        clipField(v.EditionID, maxFieldLength),
		Build:          clipField(build, maxFieldLength),
		Architecture:   Architecture(arch),
		UpdatePackages: normalizeUpdates(updates),
	}
}

// CBSPackage is one servicing package: a subkey of
// HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages
// and its CurrentState value.
type CBSPackage struct {
	Name         string
	CurrentState uint32
}

// The CurrentState values of an installed package. The others — staged,
// superseded, install or uninstall pending, absent — are not installed
// updates, though their subkeys stay behind.
const (
	cbsInstalled = 0x70
	cbsPermanent = 0x80
)

var kbPattern = regexp.MustCompile(`(?i)^Package_for_KB(\d{6,8})~`)

// HasHotfixName tells whether a servicing package's name carries a KB
// number, so that a reader opens only those subkeys for their state.
func HasHotfixName(name string) bool { return kbPattern.MatchString(name) }

// Hotfixes returns the KB numbers of the installed servicing packages, as
// Get-HotFix (Win32_QuickFixEngineering) lists them.
func Hotfixes(packages []CBSPackage) []string {
	var out []string
	for _, p := range packages {
		if p.CurrentState != cbsInstalled && p.CurrentState != cbsPermanent {
			continue
		}
		if m := kbPattern.FindStringSubmatch(p.Name); m != nil {
			out = append(out, "KB"+m[1])
		}
	}
	return normalizeUpdates(out)
}
