package sysinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseOSRelease reads an os-release file (KEY=value lines, values
// optionally quoted as in shell).
func ParseOSRelease(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			if uq, err := strconv.Unquote(`"` + v[1:len(v)-1] + `"`); err == nil && v[0] == '"' {
				v = uq
			} else {
				v = v[1 : len(v)-1]
			}
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("os-release: %w", err)
	}
	return out, nil
}

// LinuxOS builds the OS description from os-release, the kernel release and
// machine name uname gives, and the installed update packages.
func LinuxOS(osRelease map[string]string, kernelRelease, machine string, updates []string) OS {
	version := osRelease["VERSION"]
	if version == "" {
		version = osRelease["VERSION_ID"]
	}
	if version == "" {
		version = osRelease["BUILD_ID"] // rolling releases such as Arch
	}
	if version == "" {
		version = "unknown"
	}
	edition := osRelease["NAME"]
	if v := osRelease["VARIANT"]; v != "" {
		edition += " " + v
	}
	return OS{
		Type:           "linux",
		Version:        clipField(version, maxFieldLength),
		Edition:        clipField(strings.TrimSpace(edition), maxFieldLength),
		Build:          clipField(kernelRelease, maxFieldLength),
		Architecture:   Architecture(machine),
		UpdatePackages: normalizeUpdates(updates),
	}
}

// ParseDpkgStatus reads the dpkg status database and returns the installed
// packages that make up the operating system itself — the base system
// (priority required or important) and the kernels — as name=version. The
// applications a person installed are not the operating system's updates
// and are left out.
func ParseDpkgStatus(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(io.LimitReader(r, MaxFileSize))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []string
	var name, version, status, priority string
	flush := func() {
		base := priority == "required" || priority == "important" || strings.HasPrefix(name, "linux-image-")
		if name != "" && version != "" && base && strings.HasSuffix(status, " installed") {
			out = append(out, name+"="+version)
		}
		name, version, status, priority = "", "", "", ""
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			name = v
		case "Version":
			version = v
		case "Status":
			status = v
		case "Priority":
			priority = v
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	return out, nil
}

// ParseRPMList reads the output of
// rpm -qa --qf '%{NAME}=%{VERSION}-%{RELEASE}\n'.
func ParseRPMList(out []byte) []string {
	var list []string
	for line := range bytes.Lines(out) {
		s := strings.TrimSpace(string(line))
		if strings.Count(s, "=") == 1 && !strings.HasPrefix(s, "gpg-pubkey=") {
			list = append(list, s)
		}
	}
	return list
}
