//go:build linux

package sysinfo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// Paths read on Linux; variables so that tests can point them elsewhere.
var (
	osReleasePaths = []string{"/etc/os-release", "/usr/lib/os-release"}
	dpkgStatusPath = "/var/lib/dpkg/status"
	rpmDBPaths     = []string{"/var/lib/rpm", "/usr/lib/sysimage/rpm"}
)

func collect(ctx context.Context) (OS, error) {
	var rel map[string]string
	var err error
	for _, p := range osReleasePaths {
		var f *os.File
		if f, err = os.Open(p); err == nil {
			rel, err = ParseOSRelease(f)
			f.Close()
			break
		}
	}
	if err != nil {
		return OS{}, fmt.Errorf("os-release: %w", err)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return OS{}, fmt.Errorf("uname: %w", err)
	}
	updates, err := linuxUpdates(ctx)
	if err != nil {
		return OS{}, err
	}
	return LinuxOS(rel, unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:]), updates), nil
}

// linuxUpdates reads the package manager's records: dpkg's status file, and
// the rpm database through rpm itself where it exists.
func linuxUpdates(ctx context.Context) ([]string, error) {
	var out []string
	if f, err := os.Open(dpkgStatusPath); err == nil {
		list, err := ParseDpkgStatus(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	for _, db := range rpmDBPaths {
		if _, err := os.Stat(db); err != nil {
			continue
		}
		rpm, err := exec.LookPath("rpm")
		if err != nil {
			break
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		b, err := exec.CommandContext(ctx, rpm, "-qa", "--qf", "%{NAME}=%{VERSION}-%{RELEASE}\n").Output()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("rpm: %w", err)
		}
		out = append(out, ParseRPMList(b)...)
		break
	}
	return out, nil
}
