//go:build !unix

package main

// selfCPUSeconds is not measured on this system; the bench reports 0.
func selfCPUSeconds() float64 { return 0 }
