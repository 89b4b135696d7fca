package sim

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rejection is one event the server refused inside a successful response.
type Rejection struct {
	Index   int    `json:"index"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Result is the server's final answer to one upload.
type Result struct {
	Accepted  int
	Rejected  []Rejection
	Duplicate bool
	Dropped   string // machine code of a permanent refusal of the whole batch
	Retries   int
}

// Client uploads batches with the wire contract of POST /v1/submit: gzip
// JSON, retry with full-jitter backoff on network errors, 429 and 503
// (honouring Retry-After), give up on other 4xx.
type Client struct {
	// BaseURL is the server's address, such as https://127.0.0.1:8443.
	BaseURL string
	HTTP    *http.Client
	// AddressHeader carries the simulated client address to a server that
	// trusts it from this proxy; empty sends none.
	AddressHeader string
	MaxBackoff    time.Duration // default 2s
	Logger        *slog.Logger  // nil discards
}

// NewHTTPClient returns a client for HTTPS to a server whose certificate
// chains to caPEM, or to the system roots when caPEM is empty.
func NewHTTPClient(caPEM []byte, conns int) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("no PEM certificate in the CA file")
		}
		cfg.RootCAs = pool
	}
	tr := &http.Transport{
		TLSClientConfig:     cfg,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// Send delivers one upload and returns the server's final answer. It
// retries until the server answers for good or ctx ends.
func (c *Client) Send(ctx context.Context, u *Upload) (*Result, error) {
	body, err := encodeBatch(u)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	maxBackoff := c.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 2 * time.Second
	}
	backoff := 25 * time.Millisecond
	for {
		wait, final, err := c.attempt(ctx, u, body, res)
		if final || err != nil {
			return res, err
		}
		res.Retries++
		// Full jitter, but never sooner than the server asked.
		d := time.Duration(rand.Int64N(int64(backoff) + 1))
		if wait > d {
			d = wait
		}
		backoff = min(2*backoff, maxBackoff)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(d):
		}
	}
}

func encodeBatch(u *Upload) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := json.NewEncoder(zw).Encode(&u.Batch); err != nil {
		return nil, fmt.Errorf("encoding batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// attempt makes one request. It returns final when res holds the answer,
// or how long the server asked to wait before the next attempt.
func (c *Client) attempt(ctx context.Context, u *Upload, body []byte, res *Result) (wait time.Duration, final bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/v1/submit", bytes.NewReader(body))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	if c.AddressHeader != "" && u.Installation != nil {
		req.Header.Set(c.AddressHeader, u.Installation.Addr.String())
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		c.log().Debug("upload failed, will retry", "err", errors.Unwrap(err))
		return 0, false, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, false, nil // a cut connection is retried like a refused one
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		var ok struct {
			Accepted  int         `json:"accepted"`
			Rejected  []Rejection `json:"rejected"`
			Duplicate bool        `json:"duplicate"`
		}
		if err := json.Unmarshal(data, &ok); err != nil {
			return 0, false, fmt.Errorf("server answered 200 with an unreadable body: %w", err)
		}
		res.Accepted, res.Rejected, res.Duplicate = ok.Accepted, ok.Rejected, ok.Duplicate
		return 0, true, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable ||
		resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout:
		return retryAfter(resp.Header.Get("Retry-After")), false, nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		var bad struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &bad)
		res.Dropped = bad.Error.Code
		if res.Dropped == "" {
			res.Dropped = "http_" + strconv.Itoa(resp.StatusCode)
		}
		c.log().Warn("batch refused", "status", resp.StatusCode, "code", res.Dropped)
		return 0, true, nil
	default:
		return 0, false, nil // other 5xx: the server may recover
	}
}

func (c *Client) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// retryAfter reads a Retry-After of whole seconds, capped so that a
// confused server cannot park the fleet.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, 30*time.Second)
}

// Sender delivers one upload; Client.Send is one, the agent-driven fleet
// another.
type Sender func(ctx context.Context, u *Upload) (*Result, error)

// RunOptions says how to drive the fleet.
type RunOptions struct {
	ManifestVersion string
	Send            Sender
	Workers         int                 // concurrent uploads, default 8
	Progress        func(day, days int) // called after each simulated day
}

// Run generates every day of the fleet in order and sends each day's
// uploads concurrently, recording outcomes in t. It stops at the first
// error of a sender (such as ctx ending).
func Run(ctx context.Context, f *Fleet, t *Truth, opt RunOptions) error {
	workers := opt.Workers
	if workers <= 0 {
		workers = 8
	}
	for d := range f.Days {
		uploads := f.DayUploads(d, opt.ManifestVersion, t)
		if err := sendAll(ctx, uploads, workers, opt.Send, t); err != nil {
			return fmt.Errorf("day %d: %w", d, err)
		}
		if opt.Progress != nil {
			opt.Progress(d+1, f.Days)
		}
	}
	return nil
}

func sendAll(ctx context.Context, uploads []*Upload, workers int, send Sender, t *Truth) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan *Upload)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for u := range next {
				res, err := send(ctx, u)
				if err != nil {
					cancel(err)
					return
				}
				t.record(u, res)
			}
		})
	}
feed:
	for _, u := range uploads {
		select {
		case next <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}
