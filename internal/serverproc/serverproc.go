// Package serverproc runs a server as a child process, as the chaos runs
// and the bench harnesses do: start it and learn where it listens from the
// line it prints, stop it as an operator would, kill it, start it again.
package serverproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// StartTimeout is how long Start waits for the announcement.
const StartTimeout = 60 * time.Second

// StopTimeout is how long Stop waits after the interrupt before it kills.
const StopTimeout = 30 * time.Second

// listeningRE is the announcement: serve, demo --server-only and the bench
// peers print it once their listener is bound, so a connection made after
// it is answered. Reading it rather than polling an endpoint also tells
// the address of a server started on port 0.
var listeningRE = regexp.MustCompile(`listening on (?:https?)://(\S+)`)

// Process is one child process at a time; it can be started again after
// it has stopped. Start, Stop and Kill belong to one goroutine; PID may be
// read from any.
type Process struct {
	Addr string // host:port from the announcement, set by Start

	cmd  *exec.Cmd
	done chan error // the result of Wait, once the child has ended
	pid  atomic.Int64
}

// Start runs cmd and returns once the child prints "listening on URL" on
// its stdout. The command's Stdout and Stderr are honoured (its stdout
// passes through a reader first); nil discards. It fails if the child
// ends, ctx is done or StartTimeout passes first, and then leaves no
// child behind.
func (p *Process) Start(ctx context.Context, cmd *exec.Cmd) error {
	found := make(chan string, 1)
	if err := p.launch(cmd, found); err != nil {
		return err
	}
	timer := time.NewTimer(StartTimeout)
	defer timer.Stop()
	select {
	case addr := <-found:
		p.Addr = addr
		return nil
	case err := <-p.done:
		p.ended()
		return fmt.Errorf("%s exited while starting: %v", cmd.Path, err)
	case <-ctx.Done():
		p.Kill()
		return ctx.Err()
	case <-timer.C:
		p.Kill()
		return fmt.Errorf("%s did not say where it listens within %s", cmd.Path, StartTimeout)
	}
}

// Launch runs cmd without waiting for an announcement: for a process that
// listens on nothing, such as a worker.
func (p *Process) Launch(cmd *exec.Cmd) error { return p.launch(cmd, nil) }

// launch starts cmd and a goroutine that copies its stdout, sends the
// first announced address to found (when not nil), and then waits for
// the child: Wait must come after the last read of the pipe.
func (p *Process) launch(cmd *exec.Cmd, found chan<- string) error {
	if p.cmd != nil {
		return errors.New("the process is already running")
	}
	out := cmd.Stdout
	if out == nil {
		out = io.Discard
	}
	if cmd.Stderr != nil && sameWriter(cmd.Stderr, out) {
		// exec serialises writes when both streams share a writer; the
		// copy below is a second writer, so serialise it here.
		w := &lockedWriter{w: out}
		out, cmd.Stderr = w, w
	}
	cmd.Stdout = nil
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	p.cmd, p.Addr = cmd, ""
	p.pid.Store(int64(cmd.Process.Pid))
	done := make(chan error, 1)
	p.done = done
	go func() {
		r := bufio.NewReader(pipe)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				_, _ = io.WriteString(out, line)
			}
			if m := listeningRE.FindStringSubmatch(line); m != nil && found != nil {
				found <- m[1]
				found = nil
			}
			if err != nil {
				break
			}
		}
		done <- cmd.Wait()
	}()
	return nil
}

// ended forgets the child that has ended.
func (p *Process) ended() {
	p.cmd = nil
	p.pid.Store(0)
}

// PID is the running child's process id, 0 when none runs. It is safe to
// call while another goroutine kills or restarts the process.
func (p *Process) PID() int { return int(p.pid.Load()) }

// Kill sends SIGKILL and waits for the child to end.
func (p *Process) Kill() {
	if p.cmd == nil {
		return
	}
	p.pid.Store(0)
	_ = p.cmd.Process.Kill()
	<-p.done
	p.ended()
}

// Stop interrupts the child, as an operator stops a server, and kills it
// if it has not ended within StopTimeout. An exit status is no error;
// having to kill is one.
func (p *Process) Stop() error {
	if p.cmd == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		p.Kill()
		return nil
	}
	timer := time.NewTimer(StopTimeout)
	defer timer.Stop()
	select {
	case err := <-p.done:
		p.ended()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return err
		}
		return nil
	case <-timer.C:
		p.Kill()
		return fmt.Errorf("the process did not stop within %s", StopTimeout)
	}
}

// sameWriter is a == b where the writers' types allow the comparison.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
