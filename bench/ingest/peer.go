package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/provisionhq/provision/bench/internal/driver"
)

// The peer is the OpenTelemetry Collector (bench/otelpeer, its own module)
// doing the same job: OTLP/HTTP over TLS into a persistent queue with
// fsync, fed the same batches as OTLP logs.

// peer is the running collector and the same batches as OTLP requests.
type peer struct {
	srv      *driver.Server
	payloads [][]byte
	events   int
}

// startPeer builds and starts the collector and converts up to max of the
// bodies to OTLP logs. An error means the peer is left out of the run.
func startPeer(tmp string, payloads [][]byte, events, maxBodies int) (*peer, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return nil, fmt.Errorf("find the module: %w", err)
	}
	src := filepath.Join(strings.TrimSpace(string(out)), "bench", "otelpeer")
	bin := filepath.Join(tmp, "otelpeer")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir, build.Stderr = src, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("go build in %s: %w", src, err)
	}
	in, conv := filepath.Join(tmp, "peer-in"), filepath.Join(tmp, "peer-out")
	for _, d := range []string{in, conv} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	n := min(len(payloads), maxBodies)
	for i := range n {
		if err := os.WriteFile(filepath.Join(in, fmt.Sprintf("%06d", i)), payloads[i], 0o600); err != nil {
			return nil, err
		}
	}
	convert := exec.Command(bin, "-convert", in, conv)
	convert.Stderr = os.Stderr
	if err := convert.Run(); err != nil {
		return nil, fmt.Errorf("convert to OTLP: %w", err)
	}
	p := &peer{events: events}
	for i := range n {
		b, err := os.ReadFile(filepath.Join(conv, fmt.Sprintf("%06d", i)))
		if err != nil {
			return nil, err
		}
		p.payloads = append(p.payloads, b)
	}
	dir := filepath.Join(tmp, "peer")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, err := selfSigned(dir); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-serve", "-dir", dir)
	cmd.Env = append(os.Environ(), runtimeEnv...)
	if p.srv, err = driver.Start("otelcol", cmd, dir); err != nil {
		return nil, err
	}
	return p, nil
}

// postOTLP sends one gzip OTLP logs request; a 200 counts events.
func postOTLP(events int) poster {
	return func(c *http.Client, addr string, body []byte) (int, int, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://"+addr+"/v1/logs", bytes.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "gzip")
		resp, err := c.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode == http.StatusOK {
			return resp.StatusCode, events, nil
		}
		return resp.StatusCode, 0, nil
	}
}
