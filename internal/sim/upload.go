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
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

// Result is the server's final answer to one upload.
type Result struct {
	Accepted  int
	Rejected  []wire.Rejection
	Duplicate bool
	Dropped   string // machine code of a permanent refusal of the whole batch
	Retries   int
	// Delivered, when not nil, lists the ids of the events the server
	// confirmed, for senders whose events are not the upload's own (the
	// agent makes its own events from the same observations).
	Delivered []string
}

// Client uploads batches with the wire contract of POST /v1/submit: gzip
// JSON, retried with the wire's policy while the error is retryable
// (network errors, 429, 5xx, honouring Retry-After). A batch the server
// refuses for good is dropped and counted; any other permanent error — a
// certificate that does not verify — ends the upload at once with that
// error, as does retrying for longer than GiveUp.
type Client struct {
	// BaseURL is the server's address, such as https://127.0.0.1:8443.
	BaseURL string
	HTTP    *http.Client
	// AddressHeader carries the simulated client address to a server that
	// trusts it from this proxy; empty sends none.
	AddressHeader string
	MaxBackoff    time.Duration // default 2s
	GiveUp        time.Duration // default 2 min
	Logger        *slog.Logger  // nil discards
	// Now is the clock each attempt's sent_at is read from, as an agent
	// stamps it; nil means the wall clock. The fleet's events keep their
	// simulated days and are uploaded now, by a right clock, like an
	// offline backlog: the server, on the same clock, finds no skew to
	// correct and places them on their days.
	Now func() time.Time
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

// Reachable checks, before a run, that the server at baseURL answers over
// a connection hc trusts. A certificate that does not verify is a mistake
// of the run's settings (a self-signed server without --ca, say) that no
// retry would mend, so the run stops at once and says so; a server that
// is only down or busy is left to the uploads' retries.
func Reachable(ctx context.Context, hc *http.Client, baseURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("server %s: %w", baseURL, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if wire.IsCertificateError(err) {
			return fmt.Errorf("server %s: its certificate does not verify (pass the server's certificate with --ca FILE): %w", baseURL, err)
		}
		return nil
	}
	resp.Body.Close()
	return nil
}

// Send delivers one upload and returns the server's final answer.
func (c *Client) Send(ctx context.Context, u *Upload) (*Result, error) {
	res := &Result{}
	p := wire.Policy{
		Initial:    25 * time.Millisecond,
		Max:        c.MaxBackoff,
		MaxElapsed: c.GiveUp,
		// A confused server must not park the fleet.
		MaxWait: time.Minute,
		Notify: func(_ int, wait time.Duration, err error) {
			res.Retries++
			c.log().Debug("upload failed, will retry", "wait", wait, "err", err)
		},
	}
	if p.Max <= 0 {
		p.Max = 2 * time.Second
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = 2 * time.Minute
	}
	ans, err := wire.Retry(ctx, p, func() (wire.SubmitAnswer, error) {
		body, err := encodeBatch(u, c.now())
		if err != nil {
			return wire.SubmitAnswer{}, wire.Permanent(err)
		}
		return c.attempt(ctx, u, body)
	})
	var refused *wire.Error
	switch {
	case err == nil:
		res.Accepted, res.Rejected, res.Duplicate = ans.Accepted, ans.Rejected, ans.Duplicate
		return res, nil
	case errors.As(err, &refused) && !refused.Retryable():
		res.Dropped = refused.Code
		c.log().Warn("batch refused", "status", refused.Status, "code", refused.Code)
		return res, nil
	default:
		return res, fmt.Errorf("upload to %s: %w", c.BaseURL, err)
	}
}

func (c *Client) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// encodeBatch encodes the upload's batch sent at now.
func encodeBatch(u *Upload, now time.Time) ([]byte, error) {
	b := u.Batch
	b.SentAt = now.UTC().Truncate(time.Millisecond)
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	if err := json.NewEncoder(zw).Encode(&b); err != nil {
		return nil, fmt.Errorf("encoding batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// gzipWriters are reused between batches: a new writer's tables cost
// more than compressing a small batch.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid constant level
	return zw
}}

// attempt makes one request and returns the answer or an error that
// wire.IsRetryable sorts.
func (c *Client) attempt(ctx context.Context, u *Upload, body []byte) (wire.SubmitAnswer, error) {
	var ans wire.SubmitAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/v1/submit", bytes.NewReader(body))
	if err != nil {
		return ans, wire.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	if c.AddressHeader != "" && u.Installation != nil {
		req.Header.Set(c.AddressHeader, u.Installation.Addr.String())
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return ans, err
	}
	defer resp.Body.Close()
	data, err := wire.ReadAnswer(resp, time.Now())
	if err != nil {
		return ans, err
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return ans, wire.Permanent(fmt.Errorf("server answered %d with an unreadable body: %w", resp.StatusCode, err))
	}
	return ans, nil
}

func (c *Client) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
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
