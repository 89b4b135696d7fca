//go:build unix

// Package cputime reads the processor time this process has used, for
// benchmarks that report CPU per operation beside wall time: on a shared
// machine the wall time of a step grows with other processes' load, its
// CPU time much less.
package cputime

import (
	"syscall"
	"time"
)

// Self returns the user and system time used by this process so far, and
// false where it cannot be read.
func Self() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
