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

var kbPattern = regexp.MustCompile(`(?i)\bKB(\d{6,8})\b|_KB(\d{6,8})~|_for_KB(\d{6,8})`)

// HotfixIDs extracts the KB numbers from the names of the servicing
// packages (the subkeys of ...\Component Based Servicing\Packages) and of
// the hotfix list, as KB followed by digits.
func HotfixIDs(names []string) []string {
	var out []string
	for _, n := range names {
		for _, m := range kbPattern.FindAllStringSubmatch(n, -1) {
			for _, g := range m[1:] {
				if g != "" {
					out = append(out, "KB"+g)
				}
			}
		}
	}
	return normalizeUpdates(out)
}
