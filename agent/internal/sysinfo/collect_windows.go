//go:build windows

package sysinfo

import (
	"context"
	"fmt"
	"runtime"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

const (
	currentVersionKey = `SOFTWARE\Microsoft\Windows NT\CurrentVersion`
	cbsPackagesKey    = `SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages`
)

func collect(ctx context.Context) (OS, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, currentVersionKey, registry.QUERY_VALUE)
	if err != nil {
		return OS{}, fmt.Errorf("registry %s: %w", currentVersionKey, err)
	}
	defer k.Close()
	str := func(name string) string { s, _, _ := k.GetStringValue(name); return s }
	num := func(name string) uint64 { n, _, _ := k.GetIntegerValue(name); return n }
	v := WindowsVersion{
		ProductName:               str("ProductName"),
		EditionID:                 str("EditionID"),
		DisplayVersion:            str("DisplayVersion"),
		ReleaseID:                 str("ReleaseId"),
		CurrentBuildNumber:        str("CurrentBuildNumber"),
		UBR:                       num("UBR"),
		CurrentMajorVersionNumber: num("CurrentMajorVersionNumber"),
		CurrentVersion:            str("CurrentVersion"),
	}
	packages, err := servicingPackages(ctx)
	if err != nil {
		return OS{}, err
	}
	return WindowsOS(v, nativeArch(), Hotfixes(packages)), nil
}

// servicingPackages reads the servicing packages that carry a KB number,
// with their state.
func servicingPackages(ctx context.Context) ([]CBSPackage, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, cbsPackagesKey, registry.ENUMERATE_SUB_KEYS)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", cbsPackagesKey, err)
	}
	defer k.Close()
	names, err := k.ReadSubKeyNames(-1)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", cbsPackagesKey, err)
	}
	var out []CBSPackage
	for _, name := range names {
		if !HasHotfixName(name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := registry.OpenKey(k, name, registry.QUERY_VALUE)
		if err != nil {
			continue // removed while we read
		}
		state, _, err := p.GetIntegerValue("CurrentState")
		p.Close()
		if err == nil {
			out = append(out, CBSPackage{Name: name, CurrentState: uint32(state)})
		}
	}
	return out, nil
}

// nativeArch is the architecture of the system, not of this process (an
// x64 binary runs on arm64 Windows under emulation).
func nativeArch() string {
	var process, native uint16
	if err := windows.IsWow64Process2(windows.CurrentProcess(), &process, &native); err == nil {
		switch native {
		case 0x8664:
			return "amd64"
		case 0xaa64:
			return "arm64"
		case 0x14c:
			return "386"
		case 0x1c0, 0x1c4:
			return "arm"
		}
	}
	return runtime.GOARCH
}
