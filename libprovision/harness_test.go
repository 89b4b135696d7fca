package main

// The harness of the host tests: it builds libprovision and the provision
// binary once per test run, starts `provision serve` over TLS, compiles C
// and C++ hosts with the system compilers, and reads back what the server
// stored with `provision privacy export`.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildDir holds what the tests build; made in TestMain, removed after.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "libprovision-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needHostTools skips where the library cannot be built and loaded: it
// needs cgo, a C compiler, and a Linux host for the .so the tests load.
func needHostTools(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the library and a server; not in -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the host tests load a Linux .so")
	}
	for _, tool := range append([]string{"go", "gcc"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	if out, err := exec.Command("go", "env", "CGO_ENABLED").Output(); err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Skip("cgo is disabled")
	}
}

// once builds one artefact per test binary run.
type once struct {
	sync.Mutex
	done map[string]error
}

var built = once{done: map[string]error{}}

func buildOnce(t testing.TB, out string, args ...string) string {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	path := filepath.Join(buildDir, out)
	err, ok := built.done[out]
	if !ok {
		cmd := exec.Command("go", append([]string{"build", "-o", path}, args...)...)
		cmd.Dir = ".."
		var b []byte
		b, err = cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("go build %s: %v\n%s", out, err, b)
		}
		built.done[out] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// sharedLibrary is libprovision.so.
func sharedLibrary(t testing.TB) string {
	return buildOnce(t, "libprovision.so", "-buildmode=c-shared", "./libprovision")
}

// staticLibrary is libprovision.a.
func staticLibrary(t testing.TB) string {
	return buildOnce(t, "libprovision.a", "-buildmode=c-archive", "./libprovision")
}

func provisionBinary(t testing.TB) string {
	return buildOnce(t, "provision", "./cmd/provision")
}

// compile builds a host program with compiler (gcc or g++) and returns its
// path; the .so is found through the rpath.
func compile(t testing.TB, compiler, out string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), out)
	full := append([]string{"-Wall", "-Wextra", "-Werror", "-O2", "-Iinclude", "-o", path}, args...)
	cmd := exec.Command(compiler, full...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", compiler, strings.Join(full, " "), err, b)
	}
	return path
}

func linkShared(t testing.TB) []string {
	so := sharedLibrary(t)
	return []string{"-L" + filepath.Dir(so), "-lprovision", "-Wl,-rpath," + filepath.Dir(so)}
}

// server is a running `provision serve`.
type server struct {
	URL, CA, Data string
	cmd           *exec.Cmd
	done          chan error
}

var listeningRE = regexp.MustCompile(`listening on (https://\S+)`)

// startServer starts the real server on a free port of 127.0.0.1 with its
// generated certificate, and stops it at the end of the test.
func startServer(t *testing.T) *server {
	t.Helper()
	s := &server{Data: t.TempDir(), done: make(chan error, 1)}
	s.CA = filepath.Join(s.Data, "server.crt")
	s.cmd = exec.Command(provisionBinary(t), "serve", "--data", s.Data, "--listen", "127.0.0.1:0")
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = io.Discard
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		s.done <- s.cmd.Wait()
	}()
	select {
	case s.URL = <-found:
	case err := <-s.done:
		t.Fatalf("provision serve exited: %v", err)
	case <-time.After(2 * time.Minute):
		s.cmd.Process.Kill()
		t.Fatal("provision serve did not say where it listens")
	}
	t.Cleanup(s.stop)
	return s
}

// stop ends the server with SIGTERM and waits for it.
func (s *server) stop() {
	if s.cmd.ProcessState != nil || s.done == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.done = nil
}

// stored is what the server holds for one installation, read with
// `provision privacy export` after the server stopped.
type stored struct {
	Batches []string                     // batch ids of the submissions
	Events  map[string]string            // event id -> type
	Fields  map[string]map[string]string // event id -> item -> value (as JSON)
}

func (s *server) export(t *testing.T, installation string) stored {
	t.Helper()
	s.stop()
	out, err := exec.Command(provisionBinary(t), "privacy", "export", "--installation", installation, "--data", s.Data).Output()
	if err != nil {
		t.Fatalf("privacy export: %v", err)
	}
	var x struct {
		InstallationID string `json:"installation_id"`
		Submissions    []struct {
			BatchID string `json:"batch_id"`
		} `json:"submissions"`
		Items []struct {
			ID     string `json:"id"`
			Values []struct {
				EventID   string          `json:"event_id"`
				EventType string          `json:"event_type"`
				Value     json.RawMessage `json:"value"`
			} `json:"values"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &x); err != nil {
		t.Fatalf("privacy export: %v\n%s", err, out)
	}
	got := stored{Events: map[string]string{}, Fields: map[string]map[string]string{}}
	for _, sub := range x.Submissions {
		got.Batches = append(got.Batches, sub.BatchID)
	}
	for _, it := range x.Items {
		for _, v := range it.Values {
			got.Events[v.EventID] = v.EventType
			if got.Fields[v.EventID] == nil {
				got.Fields[v.EventID] = map[string]string{}
			}
			if prev, dup := got.Fields[v.EventID][it.ID]; dup {
				t.Errorf("event %s item %s stored twice (%s, %s)", v.EventID, it.ID, prev, v.Value)
			}
			got.Fields[v.EventID][it.ID] = string(v.Value)
		}
	}
	return got
}

// hostOutput is the KEY=JSON lines a host example prints.
type hostOutput map[string][]string

func parseHostOutput(out []byte) hostOutput {
	h := hostOutput{}
	for line := range strings.Lines(string(out)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			h[k] = append(h[k], v)
		}
	}
	return h
}

func (h hostOutput) decode(t *testing.T, key string, v any) {
	t.Helper()
	vals := h[key]
	if len(vals) == 0 {
		t.Fatalf("the host printed no %s", key)
	}
	if err := json.Unmarshal([]byte(vals[len(vals)-1]), v); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
}

// sentEntry is the part of an agent sent-log entry the tests read.
type sentEntry struct {
	Status    string `json:"status"`
	BatchID   string `json:"batch_id"`
	Events    int    `json:"events"`
	Accepted  int    `json:"accepted"`
	Duplicate bool   `json:"duplicate"`
	Batch     struct {
		InstallationID string `json:"installation_id"`
		Events         []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"events"`
	} `json:"batch"`
}

func run(t *testing.T, ctx context.Context, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}
