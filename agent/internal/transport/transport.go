// Package transport speaks the agent's side of the wire contract: it posts
// compressed batches and deletion requests over HTTPS and sorts the answers
// into accepted, permanently refused and worth retrying.
package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Encodings of the request body.
const (
	EncodingGzip     = "gzip"
	EncodingZstd     = "zstd"
	EncodingIdentity = "identity"
)

// maxResponse bounds what is read of any answer.
const maxResponse = 1 << 20

// Options configure a client.
type Options struct {
	Server    string        // https://host[:port], the base of /v1/...
	CAFile    string        // PEM roots to trust instead of the system's
	Pin       string        // hex SHA-256 of the server certificate's SPKI; checked in addition to the chain
	Encoding  string        // gzip (default), zstd or identity
	Timeout   time.Duration // per request; default 30 s
	UserAgent string
}

// Client posts to one server.
type Client struct {
	base      *url.URL
	http      *http.Client
	encoding  string
	userAgent string
}

// New checks the options and builds a client that speaks only HTTPS with
// TLS 1.2 or later.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.Server)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server %q is not a URL with a host", o.Server)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("server %q: only https is allowed", o.Server)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	enc := o.Encoding
	switch enc {
	case "":
		enc = EncodingGzip
	case EncodingGzip, EncodingZstd, EncodingIdentity:
	default:
		return nil, fmt.Errorf("encoding %q: use gzip, zstd or identity", enc)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
		}
		tc.RootCAs = pool
	}
	if o.Pin != "" {
		pin, err := hex.DecodeString(strings.ToLower(o.Pin))
		if err != nil || len(pin) != sha256.Size {
			return nil, fmt.Errorf("pin must be the 64 hex digits of a SHA-256")
		}
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server presented no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if !bytes.Equal(got[:], pin) {
				return errors.New("server certificate does not match the pinned SPKI SHA-256")
			}
			return nil
		}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tc,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        1,
		IdleConnTimeout:     30 * time.Second,
	}
	ua := o.UserAgent
	if ua == "" {
		ua = "provision-agent"
	}
	return &Client{base: u, http: &http.Client{Transport: tr, Timeout: timeout}, encoding: enc, userAgent: ua}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Encoding is the body encoding the client uses.
func (c *Client) Encoding() string { return c.encoding }

// Rejection is one event the server refused inside a 2xx answer.
type Rejection struct {
	Index   int    `json:"index"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// SubmitResult is the server's answer to an accepted batch.
type SubmitResult struct {
	BatchID   string      `json:"batch_id"`
	Accepted  int         `json:"accepted"`
	Rejected  []Rejection `json:"rejected"`
	Duplicate bool        `json:"duplicate"`
}

// RetryableError means the batch should be sent again later: the server
// asked for it (429, 503, other 5xx) or it could not be reached.
type RetryableError struct {
	Status     int           // 0 for network errors
	RetryAfter time.Duration // from Retry-After, 0 when absent
	Err        error
}

func (e *RetryableError) Error() string {
	if e.Status == 0 {
		return "server not reached: " + e.Err.Error()
	}
	return fmt.Sprintf("server busy (HTTP %d): %v", e.Status, e.Err)
}
func (e *RetryableError) Unwrap() error { return e.Err }

// PermanentError means the server refused the request for good; sending
// it again would get the same answer.
type PermanentError struct {
	Status  int
	Code    string
	Message string
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("refused (HTTP %d, %s): %s", e.Status, e.Code, e.Message)
}

// Submit posts one batch (its JSON, uncompressed) and returns the server's
// answer, or a RetryableError or PermanentError. It reports the compressed
// size that went on the wire.
func (c *Client) Submit(ctx context.Context, batch []byte) (SubmitResult, int, error) {
	body, err := c.encode(batch)
	if err != nil {
		return SubmitResult{}, 0, err
	}
	var res SubmitResult
	err = c.post(ctx, "/v1/submit", body, c.encoding, http.StatusOK, &res)
	return res, len(body), err
}

// DeletionResult is the answer to a deletion request.
type DeletionResult struct {
	RequestID string `json:"request_id"`
	Status    string `json:"status"`
}

// Delete asks the server to erase everything of an installation id.
func (c *Client) Delete(ctx context.Context, installationID, requestID string) (DeletionResult, error) {
	body, err := json.Marshal(map[string]string{"installation_id": installationID, "request_id": requestID})
	if err != nil {
		return DeletionResult{}, err
	}
	var res DeletionResult
	err = c.post(ctx, "/v1/deletion", body, EncodingIdentity, http.StatusAccepted, &res)
	return res, err
}

func (c *Client) post(ctx context.Context, path string, body []byte, encoding string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", encoding)
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &RetryableError{Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return &RetryableError{Status: resp.StatusCode, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if len(data) > maxResponse {
		return &RetryableError{Status: resp.StatusCode, Err: errors.New("answer larger than 1 MiB")}
	}
	return classify(resp.StatusCode, resp.Header.Get("Retry-After"), data, want, out, time.Now())
}

// classify turns a status, Retry-After and body into the result or error.
func classify(status int, retryAfter string, data []byte, want int, out any, now time.Time) error {
	switch {
	case status == want || status/100 == 2:
		if err := json.Unmarshal(data, out); err != nil {
			return &RetryableError{Status: status, Err: fmt.Errorf("unreadable answer: %w", err)}
		}
		return nil
	case status == http.StatusTooManyRequests || status >= 500:
		return &RetryableError{Status: status, RetryAfter: ParseRetryAfter(retryAfter, now), Err: errors.New(errorMessage(data))}
	default:
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if e.Error.Code == "" {
			e.Error.Code = "http_" + strconv.Itoa(status)
		}
		if e.Error.Message == "" {
			e.Error.Message = http.StatusText(status)
		}
		return &PermanentError{Status: status, Code: clip(e.Error.Code, 64), Message: clip(e.Error.Message, 300)}
	}
}

func errorMessage(data []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
		return clip(e.Error.Message, 300)
	}
	return "no reason given"
}

func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}

// maxRetryAfter bounds what a server can ask for.
const maxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or
// unreadable.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	// Batches are small: one thread and small windows keep memory low.
	return zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(1<<20))
})

func (c *Client) encode(b []byte) ([]byte, error) {
	switch c.encoding {
	case EncodingIdentity:
		return b, nil
	case EncodingZstd:
		enc, err := zstdEncoder()
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(b, nil), nil
	default:
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(b); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
}
