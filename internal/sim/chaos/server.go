package chaos

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provisionhq/provision/internal/certs"
)

// ServerProcess is `provision serve` run as a child process on a fixed
// 127.0.0.1 port, so that it can be killed and restarted in place.
type ServerProcess struct {
	Binary  string // the provision binary
	DataDir string // --data
	Addr    string // 127.0.0.1:PORT it listens on
	// Command gives the arguments of the binary for the data directory
	// and address; nil means serve --data DIR --listen ADDR.
	Command func(dataDir, addr string) []string
	// Plain means the server speaks plain HTTP, behind a TLS terminator.
	Plain  bool
	Output io.Writer

	cmd  *exec.Cmd // owned by the goroutine that starts and kills
	done chan error
	pid  atomic.Int64 // readable from any goroutine, for sampling
}

// FreeAddr returns a 127.0.0.1 address with a port nobody listens on now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// CertFile is where serve keeps its self-signed certificate.
func (s *ServerProcess) CertFile() string { return filepath.Join(s.DataDir, "server.crt") }

// Start runs the server and waits until /healthz answers.
func (s *ServerProcess) Start(ctx context.Context) error {
	if s.cmd != nil {
		return errors.New("server already running")
	}
	args := []string{"serve", "--data", s.DataDir, "--listen", s.Addr}
	if s.Command != nil {
		args = s.Command(s.DataDir, s.Addr)
	}
	cmd := exec.Command(s.Binary, args...)
	cmd.Stdout, cmd.Stderr = s.Output, s.Output
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the server: %w", err)
	}
	s.cmd = cmd
	s.pid.Store(int64(cmd.Process.Pid))
	s.done = make(chan error, 1)
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-s.done:
			s.cmd = nil
			s.pid.Store(0)
			return fmt.Errorf("the server exited while starting: %v", err)
		case <-ctx.Done():
			s.Kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if s.healthy(ctx) {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return errors.New("the server did not become healthy within 60s")
		}
	}
}

func (s *ServerProcess) healthy(ctx context.Context) bool {
	if s.Plain {
		return s.get(ctx, &http.Transport{}, "http://")
	}
	pool, err := certs.LoadPool(s.CertFile())
	if err != nil {
		return false
	}
	return s.get(ctx, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, "https://")
}

func (s *ServerProcess) get(ctx context.Context, tr *http.Transport, scheme string) bool {
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, scheme+s.Addr+"/healthz", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// PID is the running server's process id, 0 when it is not running. It
// is safe to call while another goroutine kills or restarts the server.
func (s *ServerProcess) PID() int { return int(s.pid.Load()) }

// Kill sends SIGKILL and waits for the process to end.
func (s *ServerProcess) Kill() {
	if s.cmd == nil {
		return
	}
	s.pid.Store(0)
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Stop asks the server to shut down gracefully and kills it if it has not
// ended within the timeout.
func (s *ServerProcess) Stop(timeout time.Duration) error {
	if s.cmd == nil {
		return nil
	}
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		s.Kill()
		return nil
	}
	select {
	case err := <-s.done:
		s.cmd = nil
		s.pid.Store(0)
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return err
		}
		return nil
	case <-time.After(timeout):
		s.Kill()
		return fmt.Errorf("the server did not stop within %s", timeout)
	}
}

// Usage is a sample of a process's resources, read from /proc (Linux).
type Usage struct {
	RSSKiB    int64
	OpenFiles int
}

// Sample reads the usage of process pid; zero values where /proc is not
// available.
func Sample(pid int) Usage {
	var u Usage
	if pid == 0 {
		return u
	}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				u.RSSKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			}
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		u.OpenFiles = len(ents)
	}
	return u
}

// syncWriter serialises writes from the child's stdout and stderr copiers.
type syncWriter struct {
	mu sync.Mutex
	b  io.Writer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
