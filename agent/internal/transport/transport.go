// Package transport speaks the agent's side of the wire contract: it posts
// compressed batches and deletion requests over HTTPS and sorts the answers
// into accepted, permanently refused and worth retrying.
package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/wire"
)

// Encodings of the request body.
const (
	EncodingGzip     = "gzip"
	EncodingZstd     = "zstd"
	EncodingIdentity = "identity"
)

// Options configure a client.
type Options struct {
	Server    string        // https://host[:port], the base of /v1/...
	CAFile    string        // PEM roots to trust instead of the system's
	Pin       string        // hex SHA-256 of the server certificate's SPKI; checked in addition to the chain
	Encoding  string        // gzip (default), zstd or identity
	Timeout   time.Duration // per request; default 30 s
	UserAgent string
	// Sessions keeps TLS session tickets between uploads (see
	// FileSessionCache); nil means every connection makes a full handshake.
	Sessions tls.ClientSessionCache
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
	tc := wire.TLSConfig()
	tc.ClientSessionCache = o.Sessions
	if o.CAFile != "" {
		pool, err := certs.LoadPool(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		tc.RootCAs = pool
	}
	if o.Pin != "" {
		pin := strings.ToLower(o.Pin)
		if b, err := hex.DecodeString(pin); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("pin must be the 64 hex digits of a SHA-256")
		}
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			// Permanent: the server will present the same key next time.
			if len(cs.PeerCertificates) == 0 {
				return wire.Permanent(errors.New("server presented no certificate"))
			}
			if certs.SPKISHA256Hex(cs.PeerCertificates[0]) != pin {
				return wire.Permanent(ErrPinMismatch)
			}
			return nil
		}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	// HTTP/1.1: an upload is one or two requests on one connection, and
	// HTTP/2's preface, settings and window frames would cost more bytes
	// than they save. Through a proxy, the transport makes its own TLS
	// connection with tc (resuming with the default groups).
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tc,
		DialTLSContext:      newTLSDialer(tc, 10*time.Second).DialTLSContext,
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

// ErrPinMismatch means the server's key is not the pinned one.
var ErrPinMismatch = errors.New("server certificate does not match the pinned SPKI SHA-256")

// Submit posts one batch (its JSON, uncompressed) and returns the server's
// answer or an error that wire.IsRetryable sorts; a refusal is a
// *wire.Error. It reports the compressed
// size that went on the wire.
func (c *Client) Submit(ctx context.Context, batch []byte) (wire.SubmitAnswer, int, error) {
	body, err := c.encode(batch)
	if err != nil {
		return wire.SubmitAnswer{}, 0, err
	}
	var res wire.SubmitAnswer
	err = c.post(ctx, "/v1/submit", body, c.encoding, &res)
	return res, len(body), err
}

// Delete asks the server to erase everything of an installation id.
func (c *Client) Delete(ctx context.Context, installationID, requestID string) (wire.DeletionAnswer, error) {
	body, err := json.Marshal(wire.DeletionRequest{InstallationID: installationID, RequestID: requestID})
	if err != nil {
		return wire.DeletionAnswer{}, err
	}
	var res wire.DeletionAnswer
	err = c.post(ctx, "/v1/deletion", body, EncodingIdentity, &res)
	return res, err
}

func (c *Client) post(ctx context.Context, path string, body []byte, encoding string, out any) error {
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
		return err
	}
	defer resp.Body.Close()
	data, err := wire.ReadAnswer(resp, time.Now())
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return wire.Transient(fmt.Errorf("unreadable answer (HTTP %d): %w", resp.StatusCode, err))
	}
	return nil
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
		zw := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(zw)
		zw.Reset(&buf)
		if _, err := zw.Write(b); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
}

// gzipWriters keeps gzip writers between batches: a writer at the best
// compression level allocates about a megabyte of tables, which cost more
// to set up than compressing a day's batch. Reset clears a writer's state
// before each use, so what one batch leaves in it never reaches another.
var gzipWriters = sync.Pool{New: func() any {
	zw, err := gzip.NewWriterLevel(nil, gzip.BestCompression)
	if err != nil {
		// A constant, valid level: this cannot happen.
		panic(err)
	}
	return zw
}}
