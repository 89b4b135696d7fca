// Package driver is what the bench harnesses share to load a server over
// HTTPS: start a server process and find its address and certificate,
// post a submission as an agent does, stop the process.
package driver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/wire"
)

// Build builds the provision command into dir and returns the path of
// the binary.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "provision")
	build := exec.Command("go", "build", "-o", bin, "github.com/provisionhq/provision/cmd/provision")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build: %w", err)
	}
	return bin, nil
}

var listeningRE = regexp.MustCompile(`listening on https://(\S+)`)

// Server is a server process under load.
type Server struct {
	Name string
	Addr string // host:port it listens on
	Dir  string // where it wrote server.crt
	cmd  *exec.Cmd
}

// Start runs cmd and waits for the line that says where it listens; it
// reads the certificate from dir/server.crt.
func Start(name string, cmd *exec.Cmd, dir string) (*Server, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case addr := <-found:
		return &Server{Name: name, Addr: addr, Dir: dir, cmd: cmd}, nil
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not start", name)
	}
}

// Stop asks the process to stop, as an operator would, and kills it after
// 30 s.
func (s *Server) Stop() { StopProcess(s.cmd) }

// StopProcess stops any process this way.
func StopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
	}
}

// Pid is the process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Client returns an HTTPS client that trusts the server's certificate,
// with up to conns connections.
func (s *Server) Client(conns int) (*http.Client, error) {
	pool, err := certs.LoadPool(filepath.Join(s.Dir, "server.crt"))
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			DisableCompression:  true,
		},
	}, nil
}

// Answer is what one submission got.
type Answer struct {
	Status   int
	Accepted int
	Shed     bool          // 429 or 503: the server asked to come back
	Wait     time.Duration // its Retry-After
}

// Post sends one gzip body to /v1/submit as an agent does and reads the
// answer with the wire contract. An answer other than 2xx, 429 and 503 is
// an error.
func Post(ctx context.Context, c *http.Client, addr string, gzipBody []byte) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+"/v1/submit", bytes.NewReader(gzipBody))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	a := Answer{Status: resp.StatusCode}
	data, err := wire.ReadAnswer(resp, time.Now())
	var we *wire.Error
	switch {
	case err == nil:
		var sa wire.SubmitAnswer
		if err := json.Unmarshal(data, &sa); err != nil {
			return a, fmt.Errorf("unreadable answer: %w", err)
		}
		a.Accepted = sa.Accepted
		return a, nil
	case errors.As(err, &we) && (we.Status == http.StatusTooManyRequests || we.Status == http.StatusServiceUnavailable):
		a.Shed, a.Wait = true, we.RetryAfter
		return a, nil
	default:
		_, _ = io.Copy(io.Discard, resp.Body)
		return a, err
	}
}
