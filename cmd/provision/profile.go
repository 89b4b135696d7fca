package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// registerCPUProfile adds the hidden --cpu-profile flag that the benchmark
// harnesses (bench/ingest, bench/scaleout) use to see where a server's
// time goes under their load.
func registerCPUProfile(cmd *cobra.Command, file *string) {
	f := cmd.Flags()
	f.StringVar(file, "cpu-profile", "", "write a CPU profile of the whole run to `FILE` (for benchmarks)")
	_ = f.MarkHidden("cpu-profile")
}

// startCPUProfile profiles the process into file until stop is called; an
// empty file profiles nothing.
func startCPUProfile(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	out, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		out.Close()
	}, nil
}
