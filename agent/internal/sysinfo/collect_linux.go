//go:build linux

package sysinfo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Paths read on Linux; variables so that tests can point them elsewhere.
var (
	osReleasePaths = []string{"/etc/os-release", "/usr/lib/os-release"}
	dpkgStatusPath = "/var/lib/dpkg/status"
	aptListsDir    = "/var/lib/apt/lists"
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
	if err := ctx.Err(); err != nil {
		return OS{}, err
	}
	updates, err := linuxUpdates()
	if err != nil {
		return OS{}, err
	}
	return LinuxOS(rel, unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:]), updates), nil
}

// linuxUpdates reads the updates a Debian-like system installed from its
// security and updates suites. Other distributions' package databases do
// not say which repository a package came from (rpm's does not), so they
// report no updates rather than every installed package.
func linuxUpdates() ([]string, error) {
	f, err := os.Open(dpkgStatusPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	installed, err := ParseDpkgInstalled(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(aptListsDir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil // apt has never fetched lists: nothing says what is an update
	}
	return DebianUpdates(os.DirFS(aptListsDir), installed)
}
