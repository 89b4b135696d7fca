package serverproc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Usage is a sample of a process's resources, read from /proc (Linux).
type Usage struct {
	RSSKiB     int64 // resident now
	PeakRSSKiB int64 // the most it has been resident
	OpenFiles  int
	CPU        time.Duration // user and system time of all its threads so far
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
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		u.CPU = statCPU(string(data))
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

// userHZ is the unit of /proc's CPU times: USER_HZ, which Linux fixes at
// 100 for user space whatever the kernel's own tick.
const userHZ = 100

// statCPU reads utime and stime from a /proc/PID/stat line. The fields
// are counted after the command name's closing parenthesis, since the
// name may hold spaces and parentheses itself.
func statCPU(stat string) time.Duration {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	// After ")": state is field 3, utime field 14, stime field 15.
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * time.Second / userHZ
}
