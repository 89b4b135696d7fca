// Package driver is what the bench harnesses share to load a server over
// HTTPS: start a server process and find its address and certificate,
// post a submission as an agent does, stop the process.
package driver

import (
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
	"time"

	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/serverproc"
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

// Server is a server process under load.
type Server struct {
	serverproc.Process // Addr, PID, Stop
	Name               string
	Dir                string // where it wrote server.crt
}

// Start runs cmd and waits until it says where it listens; its
// certificate is dir/server.crt. The server's stderr goes to ours unless
// cmd sets it.
func Start(name string, cmd *exec.Cmd, dir string) (*Server, error) {
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	s := &Server{Name: name, Dir: dir}
	if err := s.Process.Start(context.Background(), cmd); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

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
