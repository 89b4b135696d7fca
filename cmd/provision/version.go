package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and commit are stamped by release builds:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc1234" ./cmd/provision
//
// Unstamped, they come from the module and VCS information Go records in
// the binary.
var version, commit string

// versionString is what --version prints after the program's name.
func versionString() string {
	v, c, modified := version, commit, false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if c == "" {
					c = s.Value
				}
			case "vcs.modified":
				modified = commit == "" && s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if c == "" {
		c = "unknown"
	} else if modified {
		c += "+modified"
	}
	return fmt.Sprintf("%s (commit %s, %s)", v, c, runtime.Version())
}
