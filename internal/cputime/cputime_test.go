package cputime

import (
	"runtime"
	"testing"
	"time"
)

// Work must show in the figure: spin until it grows, for at most a minute
// of wall time, however loaded the machine.
func TestSelfGrowsWithWork(t *testing.T) {
	before, ok := Self()
	if !ok {
		if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" {
			t.Skip("no getrusage on " + runtime.GOOS)
		}
		t.Fatal("Self failed")
	}
	x := uint64(1)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		for range 100_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if now, _ := Self(); now > before {
			return
		}
	}
	t.Fatalf("no CPU time counted over a minute of work (%d)", x)
}
