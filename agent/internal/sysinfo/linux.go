package sysinfo

import (
	"bufio"
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
