package serverproc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The test binary is its own child process: with SERVERPROC_CHILD set,
// TestMain plays a server instead of running the tests.
func TestMain(m *testing.M) {
	role := os.Getenv("SERVERPROC_CHILD")
	if role == "" {
		os.Exit(m.Run())
	}
	// Before anything is announced, so that an interrupt after it is
	// caught and not fatal.
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	switch role {
	case "server":
		// Like serve: bind, then announce, then serve until interrupted.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "warming up")
		fmt.Printf("generated a certificate\nlistening on https://%s\n", ln.Addr())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		<-interrupt
		fmt.Println("stopped")
	case "quiet": // a worker, or a server that never gets to announce
		<-interrupt
	case "fail":
		fmt.Fprintln(os.Stderr, "listen: address already in use")
		os.Exit(1)
	}
	os.Exit(0)
}

func child(role string, out *strings.Builder) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SERVERPROC_CHILD="+role)
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	return cmd
}

func TestStartLearnsTheAddressAndStopEnds(t *testing.T) {
	var out strings.Builder
	var p Process
	if err := p.Start(context.Background(), child("server", &out)); err != nil {
		t.Fatal(err)
	}
	if p.PID() == 0 {
		t.Error("no PID while running")
	}
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatalf("the announced address %q: %v", p.Addr, err)
	}
	c.Close()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if p.PID() != 0 {
		t.Error("a PID after Stop")
	}
	// Written by the child's two streams at once; the output holds
	// both, whole, and what came after the announcement.
	for _, want := range []string{"warming up\n", "generated a certificate\n", "listening on https://" + p.Addr + "\n", "stopped\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
	}
}

func TestStartAgainAfterKill(t *testing.T) {
	var p Process
	if err := p.Start(context.Background(), child("server", nil)); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), child("server", nil)); err == nil {
		t.Fatal("a second start while running")
	}
	first := p.PID()
	p.Kill()
	if p.PID() != 0 {
		t.Error("a PID after Kill")
	}
	if err := p.Start(context.Background(), child("server", nil)); err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if p.PID() == 0 || p.PID() == first {
		t.Errorf("PID %d after restarting %d", p.PID(), first)
	}
}

func TestStartFailsWhenTheChildEnds(t *testing.T) {
	var out strings.Builder
	var p Process
	err := p.Start(context.Background(), child("fail", &out))
	if err == nil || !strings.Contains(err.Error(), "exited while starting") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(out.String(), "address already in use") {
		t.Errorf("the child's stderr is lost: %q", out.String())
	}
	if p.PID() != 0 {
		t.Error("a PID after a failed start")
	}
	if err := p.Start(context.Background(), child("server", nil)); err != nil {
		t.Fatalf("starting after a failed start: %v", err)
	}
	p.Kill()
}

func TestStartStopsAtTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var p Process
	if err := p.Start(ctx, child("quiet", nil)); err != context.Canceled {
		t.Fatalf("got %v", err)
	}
	if p.PID() != 0 {
		t.Error("the child outlived its cancelled start")
	}
}

func TestLaunchAWorker(t *testing.T) {
	var p Process
	if err := p.Launch(child("quiet", nil)); err != nil {
		t.Fatal(err)
	}
	if p.PID() == 0 {
		t.Error("no PID while running")
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if p.PID() != 0 {
		t.Error("a PID after Stop")
	}
}

func TestSample(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	u := Sample(os.Getpid())
	if u.RSSKiB <= 0 || u.PeakRSSKiB < u.RSSKiB || u.OpenFiles == 0 {
		t.Errorf("%+v", u)
	}
	if (Sample(0) != Usage{}) {
		t.Error("a sample of no process")
	}
	// The CPU figure grows with work; spin until it does, for at most a
	// minute however loaded the machine.
	x := uint64(1)
	for deadline := time.Now().Add(time.Minute); Sample(os.Getpid()).CPU <= u.CPU; {
		if time.Now().After(deadline) {
			t.Fatalf("no CPU time counted over a minute of work (%d)", x)
		}
		for range 1_000_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
}

// A command name may hold spaces and parentheses.
func TestStatCPU(t *testing.T) {
	stat := "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 9 0 77 1000 200"
	if got, want := statCPU(stat), 3800*time.Millisecond; got != want {
		t.Errorf("statCPU = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "4242 (a", "4242 (a) S 1", "4242 (a) S 1 2 3 4 5 6 7 8 9 10 x 130"} {
		if got := statCPU(bad); got != 0 {
			t.Errorf("statCPU(%q) = %v, want 0", bad, got)
		}
	}
}
