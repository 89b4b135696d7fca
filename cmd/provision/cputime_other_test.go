//go:build !unix

package main

import "time"

// processCPU is not measured on this system; the demo test reports 0.
func processCPU() time.Duration { return 0 }
