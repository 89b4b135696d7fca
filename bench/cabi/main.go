// Command cabi measures what libprovision costs a host: the size of the
// shared and static libraries, the resident memory a C host pays for
// loading the library and opening an agent, the nanoseconds per call
// through the C ABI measured from C, and the Go allocations per call of
// the exported functions. As the same-run baseline it runs the Go
// benchmark of agent.RecordError, the same work without the C ABI.
//
//	go run ./bench/cabi [-n 200] [-threads 8]
//
// The Python host (bench/cabi/host/host.py, through the ctypes binding)
// runs too when python3 is installed. Linux only (dlopen,
// /proc/self/status); it needs gcc.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
)

func main() {
	n := flag.Int("n", 200, "durable records timed one after another (reads and crossings are timed 10x and 100x as many times)")
	threads := flag.Int("threads", 8, "threads recording at once")
	flag.Parse()
	if err := run(*n, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "cabi:", err)
		os.Exit(1)
	}
}

func run(n, threads int) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("runs on Linux only")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "provision-cabi-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	builds := []struct{ name, mode, ldflags string }{
		{"libprovision.so", "c-shared", ""},
		{"libprovision-stripped.so", "c-shared", "-s -w"},
		{"libprovision.a", "c-archive", ""},
	}
	fmt.Printf("%-40s %12s\n", "library (go build -trimpath)", "bytes")
	for _, b := range builds {
		out := filepath.Join(work, b.name)
		args := []string{"build", "-trimpath", "-buildmode=" + b.mode, "-o", out}
		if b.ldflags != "" {
			args = append(args, "-ldflags="+b.ldflags)
		}
		if err := command(root, "go", append(args, "./libprovision")...).Run(); err != nil {
			return fmt.Errorf("go build %s: %w", b.name, err)
		}
		st, err := os.Stat(out)
		if err != nil {
			return err
		}
		label := b.name
		if b.ldflags != "" {
			label += " (-ldflags '" + b.ldflags + "')"
		}
		fmt.Printf("%-40s %12d  (%.1f MiB)\n", label, st.Size(), float64(st.Size())/(1<<20))
	}

	host := filepath.Join(work, "host")
	if err := command(root, "gcc", "-std=c11", "-O2", "-Ilibprovision/include", "bench/cabi/host/host.c", "-o", host, "-lpthread", "-ldl").Run(); err != nil {
		return fmt.Errorf("gcc: %w", err)
	}
	so := filepath.Join(work, "libprovision.so")
	out, err := command(root, host, so, filepath.Join(work, "state-c"), strconv.Itoa(n), strconv.Itoa(threads)).Output()
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	figures := parseFigures(out)
	fmt.Printf("\nC host (dlopen of libprovision.so, %d records, %d threads)\n", n, threads)
	hostBase := figures["rss_before_dlopen"]
	figure("resident memory before dlopen", hostBase, "kB")
	growth("after dlopen", figures["rss_after_dlopen"], hostBase, "")
	growth("after provision_open + consent", figures["rss_after_open"], hostBase, " over the bare host")
	growth("after the timed calls", figures["rss_after_calls"], hostBase, " over the bare host")
	figure("provision_abi_version (bare crossing)", figures["abi_version"], "ns/call")
	figure("provision_status (read, JSON out, free)", figures["status"], "ns/call")
	figure("provision_record_error, one by one", figures["record_error_sequential"], "ns/call")
	figure(fmt.Sprintf("provision_record_error, %d threads", threads), figures[fmt.Sprintf("record_error_%d_threads", threads)], "ns/call")

	if python, err := exec.LookPath("python3"); err == nil {
		out, err := command(root, python, "bench/cabi/host/host.py", so, filepath.Join(work, "state-py"), strconv.Itoa(n)).Output()
		if err != nil {
			return fmt.Errorf("python host: %w", err)
		}
		py := parseFigures(out)
		fmt.Printf("\nPython host (ctypes binding, %d records)\n", n)
		pyBase := py["rss_before_load"]
		figure("resident memory before loading", pyBase, "kB  (python3 with the binding imported)")
		growth("after loading the library", py["rss_after_load"], pyBase, "")
		growth("after Agent() + accept", py["rss_after_open"], pyBase, "")
		growth("after the timed calls", py["rss_after_calls"], pyBase, "")
		figure("provision_abi_version through ctypes", py["abi_version"], "ns/call")
		figure("Agent.status() (JSON decoded)", py["status"], "ns/call")
		figure("Agent.record_error(), one by one", py["record_error_sequential"], "ns/call")
	}

	fmt.Printf("\nGo benchmarks (go test -bench, one after another; ns/op is per call)\n")
	abi, err := benchmarks(root, "./libprovision", "RecordErrorABI|StatusABI")
	if err != nil {
		return err
	}
	base, err := benchmarks(root, "./agent", "^BenchmarkRecordError$")
	if err != nil {
		return err
	}
	for _, name := range []string{"BenchmarkRecordErrorABI", "BenchmarkStatusABI", "BenchmarkRecordError"} {
		r, ok := abi[name]
		if !ok {
			r, ok = base[name]
		}
		if ok {
			fmt.Printf("  %-28s %12.0f ns/op %8.0f B/op %6.0f allocs/op\n", name, r.ns, r.bytes, r.allocs)
		}
	}
	if a, b := abi["BenchmarkRecordErrorABI"], base["BenchmarkRecordError"]; a.ns > 0 && b.ns > 0 {
		fmt.Printf("  record through the C ABI / agent.RecordError in Go: %.2fx time, %+.0f allocs\n", a.ns/b.ns, a.allocs-b.allocs)
	}
	if c := figures["record_error_sequential"]; c > 0 && base["BenchmarkRecordError"].ns > 0 {
		fmt.Printf("  record from C / agent.RecordError in Go: %.2fx\n", c/base["BenchmarkRecordError"].ns)
	}
	return nil
}

// parseFigures reads the "name value unit" lines of a footprint host.
func parseFigures(out []byte) map[string]float64 {
	figures := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 {
			v, _ := strconv.ParseFloat(f[1], 64)
			figures[f[0]] = v
		}
	}
	return figures
}

type benchResult struct{ ns, bytes, allocs float64 }

var benchLine = regexp.MustCompile(`^(Benchmark\w+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:\s+([\d.]+) B/op\s+([\d.]+) allocs/op)?`)

func benchmarks(root, pkg, pattern string) (map[string]benchResult, error) {
	out, err := command(root, "go", "test", "-run", "^$", "-bench", pattern, "-benchmem", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("go test -bench %s %s: %w\n%s", pattern, pkg, err, out)
	}
	res := map[string]benchResult{}
	for line := range strings.Lines(string(out)) {
		if m := benchLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			var r benchResult
			r.ns, _ = strconv.ParseFloat(m[2], 64)
			r.bytes, _ = strconv.ParseFloat(m[3], 64)
			r.allocs, _ = strconv.ParseFloat(m[4], 64)
			res[m[1]] = r
		}
	}
	return res, nil
}

func command(dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	return cmd
}

// figure prints one figure a host measured.
func figure(label string, v float64, unit string) {
	fmt.Printf("  %-40s %8.0f %s\n", label, v, unit)
}

// growth prints a resident-memory figure and how far it grew over base.
func growth(label string, kB, base float64, over string) {
	fmt.Printf("  %-40s %8.0f kB  (+%.1f MiB%s)\n", label, kB, (kB-base)/1024, over)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run inside the provision module")
	}
	return filepath.Dir(mod), nil
}
