//go:build darwin

package sysinfo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

const installHistoryPath = "/Library/Receipts/InstallHistory.plist"

func collect(ctx context.Context) (OS, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/sw_vers").Output()
	if err != nil {
		return OS{}, fmt.Errorf("sw_vers: %w", err)
	}
	v, err := ParseSwVers(out)
	if err != nil {
		return OS{}, err
	}
	var updates []string
	if f, err := os.Open(installHistoryPath); err == nil {
		data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
		f.Close()
		if err != nil {
			return OS{}, fmt.Errorf("install history: %w", err)
		}
		if updates, err = ParseInstallHistory(data); err != nil {
			return OS{}, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return OS{}, fmt.Errorf("install history: %w", err)
	}
	machine, err := unix.Sysctl("hw.machine")
	if err != nil {
		return OS{}, fmt.Errorf("sysctl hw.machine: %w", err)
	}
	// An amd64 binary under Rosetta sees x86_64 in hw.machine; the
	// translated flag tells the real architecture.
	if t, err := unix.SysctlUint32("sysctl.proc_translated"); err == nil && t == 1 {
		machine = "arm64"
	}
	return MacOS(v, machine, updates), nil
}
