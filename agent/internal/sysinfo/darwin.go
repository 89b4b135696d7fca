package sysinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"howett.net/plist"
)

// SwVers holds what sw_vers prints.
type SwVers struct {
	ProductName    string
	ProductVersion string
	BuildVersion   string
}

// ParseSwVers reads the output of sw_vers (Key:<tab>value lines).
func ParseSwVers(out []byte) (SwVers, error) {
	var v SwVers
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(k) {
		case "ProductName":
			v.ProductName = val
		case "ProductVersion":
			v.ProductVersion = val
		case "BuildVersion":
			v.BuildVersion = val
		}
	}
	if v.ProductVersion == "" {
		return v, fmt.Errorf("sw_vers: no ProductVersion in its output")
	}
	return v, nil
}

// installRecord is one entry of /Library/Receipts/InstallHistory.plist.
type installRecord struct {
	DisplayName    string `plist:"displayName"`
	DisplayVersion string `plist:"displayVersion"`
	ProcessName    string `plist:"processName"`
}

// softwareUpdateProcesses are the processes InstallHistory.plist names
// when Apple's Software Update installed something: the daemon behind
// System Settings, the softwareupdate command, and the Software Update
// application of older releases. Packages installed by hand (Installer)
// or apps from the App Store (appstoreagent) are not OS updates.
var softwareUpdateProcesses = map[string]bool{
	"softwareupdated": true,
	"softwareupdate":  true,
	"Software Update": true,
}

// ParseInstallHistory reads InstallHistory.plist (XML or binary) and
// returns the updates that Software Update installed, as "name version".
func ParseInstallHistory(data []byte) ([]string, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("install history: larger than %d bytes", MaxFileSize)
	}
	var records []installRecord
	if _, err := plist.Unmarshal(data, &records); err != nil {
		return nil, fmt.Errorf("install history: %w", err)
	}
	var out []string
	for _, r := range records {
		if !softwareUpdateProcesses[r.ProcessName] || r.DisplayName == "" {
			continue
		}
		name := r.DisplayName
		if !strings.HasSuffix(name, r.DisplayVersion) {
			name += " " + r.DisplayVersion
		}
		out = append(out, strings.TrimSpace(name))
	}
	return out, nil
}

// MacOS builds the OS description.
func MacOS(v SwVers, arch string, updates []string) OS {
	return OS{
		Type:           "macos",
		Version:        clipField(v.ProductVersion, maxFieldLength),
		Edition:        clipField(v.ProductName, maxFieldLength),
		Build:          clipField(v.BuildVersion, maxFieldLength),
		Architecture:   Architecture(arch),
		UpdatePackages: normalizeUpdates(updates),
	}
}
