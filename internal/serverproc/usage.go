package serverproc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Usage is a sample of a process's resources, read from /proc (Linux).
type Usage struct {
	RSSKiB     int64 // resident now
	PeakRSSKiB int64 // the most it has been resident
	OpenFiles  int
}

// Sample reads the usage of process pid; zero values where /proc is not
// available or pid is 0.
func Sample(pid int) Usage {
	var u Usage
	if pid == 0 {
		return u
	}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for line := range strings.Lines(string(data)) {
			name, value, _ := strings.Cut(line, ":")
			switch name {
			case "VmRSS":
				u.RSSKiB = kib(value)
			case "VmHWM":
				u.PeakRSSKiB = kib(value)
			}
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		u.OpenFiles = len(ents)
	}
	return u
}

// kib reads a /proc/PID/status size such as "   1234 kB".
func kib(value string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
	return n
}
