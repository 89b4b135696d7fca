// Command demo measures the README's main job as a new user runs it:
// `provision demo --exit`, built as a binary, with its output to a file
// (no terminal, so the progress comes as a line per simulated day). It
// prints the wall time, the CPU time of the demo process and the load
// average of the machine before and after (the machine may be shared:
// the load says how much of it the demo had), and exits 1 when the demo
// failed or took longer than -max.
//
//	go run ./bench/demo                          # the default fleet
//	go run ./bench/demo -- --installs 2000 --days 21
//
// Arguments after -- go to the demo.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	target := flag.Duration("max", time.Minute, "the demo's wall time target")
	keep := flag.Bool("keep", false, "keep the output file and the binary")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, *target, *keep, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "bench/demo:", err)
		os.Exit(1)
	}
}

func bench(ctx context.Context, target time.Duration, keep bool, args []string) error {
	dir, err := os.MkdirTemp("", "provision-bench-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	bin := filepath.Join(dir, "provision")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/provision")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the binary (run from the module root): %w", err)
	}
	outPath := filepath.Join(dir, "demo.out")
	out, err := os.Create(outPath)
	if err != nil {
		return err
	}
	defer out.Close()

	argv := append([]string{"demo", "--exit"}, args...)
	loadBefore := loadAverage()
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Stdout, cmd.Stderr = out, out
	began := time.Now()
	runErr := cmd.Run()
	wall := time.Since(began)
	loadAfter := loadAverage()
	if cmd.ProcessState == nil {
		return runErr
	}
	user, sys := cmd.ProcessState.UserTime(), cmd.ProcessState.SystemTime()

	data, err := os.ReadFile(outPath)
	if err != nil {
		return err
	}
	progress, last, findings := 0, "", "none reported"
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "day ") {
			progress++
		}
		if strings.HasPrefix(sc.Text(), "Every planted finding") || strings.HasPrefix(sc.Text(), "Planted findings the reports do not show") {
			findings = sc.Text()
		}
		if strings.TrimSpace(sc.Text()) != "" {
			last = sc.Text()
		}
	}
	fmt.Printf("command:       provision %s (output to a file)\n", strings.Join(argv, " "))
	fmt.Printf("wall time:     %.1f s (target %.0f s)\n", wall.Seconds(), target.Seconds())
	fmt.Printf("CPU time:      %.1f s (user %.1f s, system %.1f s) on %d CPUs\n", (user + sys).Seconds(), user.Seconds(), sys.Seconds(), runtime.NumCPU())
	fmt.Printf("load average:  %s before, %s after (1, 5, 15 min)\n", loadBefore, loadAfter)
	fmt.Printf("findings:      %s\n", findings)
	fmt.Printf("progress:      %d per-day lines; last line: %s\n", progress, last)
	if keep {
		fmt.Printf("output:        %s\n", outPath)
	}
	var errs []error
	if runErr != nil {
		errs = append(errs, fmt.Errorf("the demo failed: %w; its output:\n%s", runErr, data))
	}
	if !bytes.Contains(data, []byte("daily active installations match on all")) {
		errs = append(errs, errors.New("the demo did not report a match with the ground truth"))
	}
	if progress == 0 {
		errs = append(errs, errors.New("the demo printed no progress line"))
	}
	if wall > target {
		errs = append(errs, fmt.Errorf("wall time %.1f s is over the %.0f s target (load average %s before)", wall.Seconds(), target.Seconds(), loadBefore))
	}
	return errors.Join(errs...)
}

// loadAverage is the system's load average over 1, 5 and 15 minutes, or
// "unknown" where /proc/loadavg is not.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
