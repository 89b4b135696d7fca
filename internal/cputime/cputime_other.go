//go:build !unix

// Package cputime reads the processor time this process has used, for
// benchmarks that report CPU per operation beside wall time.
package cputime

import "time"

// Self returns false here: the platform has no getrusage.
func Self() (time.Duration, bool) { return 0, false }
