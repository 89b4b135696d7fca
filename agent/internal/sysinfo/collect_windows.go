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
	hotfixKey         = `SOFTWARE\Microsoft\Windows NT\CurrentVersion\Hotfix`
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
	var names []string
	for _, path := range []string{cbsPackagesKey, hotfixKey} {
		if err := ctx.Err(); err != nil {
			return OS{}, err
		}
		names = append(names, subkeys(path)...)
	}
	return WindowsOS(v, nativeArch(), HotfixIDs(names)), nil
}

func subkeys(path string) []string {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, path, registry.ENUMERATE_SUB_KEYS)
	if err != nil {
		return nil
	}
	defer k.Close()
	names, _ := k.ReadSubKeyNames(-1)
	return names
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
