// Package attack reproduces the attacks a hostile client can make on the
// ingest server, against the real handler over real SQLite and TLS (HTTP/1.1
// and HTTP/2) on 127.0.0.1: slow bodies on many connections and streams,
// amplifying batches, malformed JSON, floods from one client. The attack
// suite (internal/ingest's attack_test.go) runs a bounded version and
// asserts outcomes; bench/attack runs the long version and prints figures.
//
// Clients are told apart by X-Forwarded-For, which the rig's server trusts
// as a proxy's header, so one test process can be many clients.
package attack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provisionhq/provision/internal/clock"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/selfsigned"
	"github.com/provisionhq/provision/internal/sqlite"
	"github.com/provisionhq/provision/internal/wire"
)

// AddressHeader is the header the rig's server takes client addresses from.
const AddressHeader = "X-Forwarded-For"

// Rig is one ingest server over SQLite behind TLS on 127.0.0.1, with
// deletion served by the real privacy service.
type Rig struct {
	Store  *sqlite.Store
	Server *ingest.Server
	HTTP   *httptest.Server
	Limits ingest.Limits
}

// NewRig starts a server with its store in dir, on the system clock.
func NewRig(ctx context.Context, dir string, l ingest.Limits) (*Rig, error) {
	return NewRigClock(ctx, dir, l, nil)
}

// NewRigClock starts a server with its store in dir whose clock (rate
// limits, time windows) is now; nil is the system clock.
func NewRigClock(ctx context.Context, dir string, l ingest.Limits, now func() time.Time) (*Rig, error) {
	store, err := sqlite.Open(ctx, filepath.Join(dir, "provision.db"))
	if err != nil {
		return nil, err
	}
	m := manifest.Reference()
	svc, err := privacy.New(privacy.Options{Store: sqlite.NewPrivacyStore(store.DB()), Manifest: m})
	if err != nil {
		store.Close()
		return nil, err
	}
	srv, err := ingest.NewServer(ingest.Deps{
		Log: store, Manifest: m, Limits: l,
		ClientAddr: ingest.TrustedHeader(AddressHeader),
		Ready:      store.Ping,
		Deletion:   privacy.NewDeletionHandler(svc),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:        now,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	cert, err := selfsigned.New("attack rig", 24*time.Hour, "example.com")
	if err != nil {
		store.Close()
		return nil, err
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.EnableHTTP2 = true
	// An ECDSA certificate, as `provision serve` generates: httptest's
	// RSA one would make every handshake of the attack cost ten times
	// more than in production.
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	hs.Config.ReadHeaderTimeout = 10 * time.Second
	// net/http's own messages name the peer address: they go nowhere.
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	hs.StartTLS()
	return &Rig{Store: store, Server: srv, HTTP: hs, Limits: l}, nil
}

// Close stops the server and closes the store.
func (r *Rig) Close() {
	r.HTTP.CloseClientConnections()
	r.HTTP.Close()
	r.Store.Close()
}

// Addr is the server's host:port.
func (r *Rig) Addr() string { return r.HTTP.Listener.Addr().String() }

// Client returns a client of its own (its own connections), over HTTP/2
// or HTTP/1.1.
func (r *Rig) Client(h2 bool) *http.Client {
	tr := r.HTTP.Client().Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = h2
	if !h2 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	tr.MaxConnsPerHost = 0
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// Answer is what the server said to one request.
type Answer struct {
	Status   int
	Code     string // the error code, "" for 2xx
	Accepted int    // events accepted, for a 200 to a submission
	Err      error  // transport error: no answer
}

// Post sends body to path as client addr.
func Post(ctx context.Context, c *http.Client, base, path, addr string, body []byte, encoding string) Answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return Answer{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	req.Header.Set(AddressHeader, addr)
	resp, err := c.Do(req)
	if err != nil {
		return Answer{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		// Cut off while reading (the attack's end cancels ctx): the
		// answer's code is unknown, so it is not counted as any.
		return Answer{Err: err}
	}
	a := Answer{Status: resp.StatusCode}
	var eb struct {
		Error    struct{ Code string } `json:"error"`
		Accepted int                   `json:"accepted"`
	}
	json.Unmarshal(b, &eb)
	a.Code, a.Accepted = eb.Error.Code, eb.Accepted
	return a
}

// SlowResult counts what happened to slow bodies; read it with Snapshot
// while the attack runs.
type SlowResult struct {
	Opened    int64 // requests started (connections for HTTP/1.1, streams for HTTP/2)
	CutOff    int64 // answered 408 too_slow, or the stream or connection was closed on them
	Completed int64 // answered otherwise (none expected)
}

// Snapshot reads the counts while the attack may still be running.
func (r *SlowResult) Snapshot() SlowResult {
	return SlowResult{atomic.LoadInt64(&r.Opened), atomic.LoadInt64(&r.CutOff), atomic.LoadInt64(&r.Completed)}
}

// SlowLoris keeps conns HTTP/1.1 connections and streams HTTP/2 streams
// (on streams/100 connections) sending a submission body of 1 MB at one
// byte per interval until ctx is done; a request that is cut off is
// reopened at once, as an attacker would. It counts into res.
func SlowLoris(ctx context.Context, r *Rig, conns, streams int, interval time.Duration, res *SlowResult) {
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			addr := fmt.Sprintf("198.51.100.%d", i%250+1)
			for ctx.Err() == nil {
				slowHTTP1(ctx, r, addr, interval, res)
			}
		})
	}
	if streams > 0 {
		h2conns := (streams + 99) / 100
		for c := range h2conns {
			client := r.Client(true)
			for s := range min(100, streams-c*100) {
				wg.Go(func() {
					addr := fmt.Sprintf("203.0.113.%d", (c*100+s)%250+1)
					for ctx.Err() == nil {
						slowHTTP2(ctx, client, r.HTTP.URL, addr, interval, res)
					}
				})
			}
		}
	}
	wg.Wait()
}

func slowHTTP1(ctx context.Context, r *Rig, addr string, interval time.Duration, res *SlowResult) {
	d := tls.Dialer{Config: &tls.Config{RootCAs: r.HTTP.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, NextProtos: []string{"http/1.1"}}}
	c, err := d.DialContext(ctx, "tcp", r.Addr())
	if err != nil {
		_ = clock.Sleep(ctx, interval)
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	atomic.AddInt64(&res.Opened, 1)
	fmt.Fprintf(c, "POST /v1/submit HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n%s: %s\r\nContent-Length: 1000000\r\n\r\n{", AddressHeader, addr)
	answered := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case status := <-answered:
			if status == 0 || status == http.StatusRequestTimeout {
				atomic.AddInt64(&res.CutOff, 1)
			} else {
				atomic.AddInt64(&res.Completed, 1)
			}
			return
		case <-ctx.Done():
			return
		case <-t.C:
			c.SetWriteDeadline(time.Now().Add(interval))
			c.Write([]byte(" "))
		}
	}
}

// trickle is a body that yields one byte per interval.
type trickle struct {
	ctx      context.Context
	interval time.Duration
	first    bool
}

func (t *trickle) Read(p []byte) (int, error) {
	if !t.first {
		t.first = true
		p[0] = '{'
		return 1, nil
	}
	if err := clock.Sleep(t.ctx, t.interval); err != nil {
		return 0, err
	}
	p[0] = ' '
	return 1, nil
}

func slowHTTP2(ctx context.Context, c *http.Client, base, addr string, interval time.Duration, res *SlowResult) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/submit", &trickle{ctx: ctx, interval: interval})
	if err != nil {
		return
	}
	req.ContentLength = 1000000
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(AddressHeader, addr)
	atomic.AddInt64(&res.Opened, 1)
	resp, err := c.Do(req)
	if ctx.Err() != nil {
		if err == nil {
			resp.Body.Close()
		}
		return
	}
	if err != nil {
		atomic.AddInt64(&res.CutOff, 1)
		_ = clock.Sleep(ctx, 10*time.Millisecond)
		return
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusRequestTimeout {
		atomic.AddInt64(&res.CutOff, 1)
	} else {
		atomic.AddInt64(&res.Completed, 1)
	}
}

// NormalResult counts a normal client's uploads.
type NormalResult struct {
	OK, Total int64
	mu        sync.Mutex
	Codes     map[string]int // status and code of the failures
	Latency   []time.Duration
}

// Normal has workers clients upload n batches each (batches made by
// batch(i), gzip), back to back; every answer is counted. Each upload
// comes from an address of its own (in 198.18.0.0/15), as a fleet's
// installations upload a few times a day each: one address uploading back
// to back would measure the per-client limit, not admission.
func Normal(ctx context.Context, r *Rig, workers, n int, batch func(i int) []byte) *NormalResult {
	res := &NormalResult{Codes: map[string]int{}}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		client := r.Client(w%2 == 0)
		wg.Go(func() {
			for range n {
				if ctx.Err() != nil {
					return
				}
				i := next.Add(1)
				addr := fmt.Sprintf("198.%d.%d.%d", 18+(i>>16)&1, (i>>8)&0xff, i&0xff)
				body := batch(int(i))
				start := time.Now()
				a := Post(ctx, client, r.HTTP.URL, "/v1/submit", addr, body, "gzip")
				took := time.Since(start)
				if a.Err != nil && ctx.Err() != nil {
					return // the run ended, not the upload
				}
				atomic.AddInt64(&res.Total, 1)
				res.mu.Lock()
				if a.Status == http.StatusOK {
					res.OK++
					res.Latency = append(res.Latency, took)
				} else {
					key := strconv.Itoa(a.Status) + " " + a.Code
					if a.Err != nil {
						key = "error " + a.Err.Error()
					}
					res.Codes[key]++
				}
				res.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return res
}

// AmplificationBody is a batch envelope followed by n empty events: three
// bytes each on the wire, tens of bytes each once decoded.
func AmplificationBody(n int) []byte {
	var b bytes.Buffer
	b.Grow(3*n + 200)
	b.WriteString(`{"batch_id":"amplify","installation_id":"0b7e2c4e-5a0f-4d7b-9c1e-2f3a4b5c6d7e","region":"eu","manifest_version":"2026.11.1","sent_at":"2026-11-28T12:00:00Z","events":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("{}")
	}
	b.WriteString("]}")
	return b.Bytes()
}

// FloodResult counts the answers to one client's flood.
type FloodResult struct {
	Answered, Allowed, Limited int64
	Elapsed                    time.Duration
	// Answers counts the allowed answers by "status code".
	Answers map[string]int

	mu sync.Mutex
}

// note counts an answer that got past the limiter by status and code, so a
// failure can say what the extra answers were.
func (f *FloodResult) note(status int, code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Answers == nil {
		f.Answers = map[string]int{}
	}
	f.Answers[fmt.Sprintf("%d %s", status, code)]++
}

// AllowedPerSecond is the rate at which the flood got through.
func (f *FloodResult) AllowedPerSecond() float64 { return float64(f.Allowed) / f.Elapsed.Seconds() }

// Flood sends requests to path from one address with workers in parallel
// for d, body(i) for the i-th.
func Flood(ctx context.Context, r *Rig, path, addr string, workers int, d time.Duration, body func(i int) []byte) *FloodResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return flood(ctx, r, path, addr, workers, 0, body)
}

// FloodN sends n requests to path from one address with workers in
// parallel, body(i) for the i-th. A request that gets no answer is not
// counted in Answered.
func FloodN(ctx context.Context, r *Rig, path, addr string, workers, n int, body func(i int) []byte) *FloodResult {
	return flood(ctx, r, path, addr, workers, int64(n), body)
}

// flood sends requests until ctx ends or, when n > 0, n were sent.
func flood(ctx context.Context, r *Rig, path, addr string, workers int, n int64, body func(i int) []byte) *FloodResult {
	res := &FloodResult{}
	client := r.Client(true)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1)
				if n > 0 && i > n {
					return
				}
				a := Post(ctx, client, r.HTTP.URL, path, addr, body(int(i)), "")
				if a.Err != nil {
					continue
				}
				atomic.AddInt64(&res.Answered, 1)
				if a.Status == http.StatusTooManyRequests && a.Code == wire.CodeRateLimited {
					atomic.AddInt64(&res.Limited, 1)
				} else {
					atomic.AddInt64(&res.Allowed, 1)
					res.note(a.Status, a.Code)
				}
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res
}

// DeletionBody is a valid deletion request for a fresh installation.
func DeletionBody(i int) []byte {
	return fmt.Appendf(nil, `{"installation_id":"%08x-0000-4000-8000-%012x","request_id":"er-%032x"}`, i+1, i+1, i+1)
}

// Memory samples the process's memory until stopped: resident set (from
// /proc where there is one) and live heap.
type Memory struct {
	stop              chan struct{}
	done              chan struct{}
	PeakRSS, PeakHeap uint64
	Samples           int
}

// SampleMemory starts sampling every interval.
func SampleMemory(interval time.Duration) *Memory {
	m := &Memory{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			metrics.Read(s)
			m.PeakHeap = max(m.PeakHeap, s[0].Value.Uint64())
			m.PeakRSS = max(m.PeakRSS, RSS())
			m.Samples++
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// Stop ends the sampling; the peaks are final after it returns.
func (m *Memory) Stop() {
	close(m.stop)
	<-m.done
}

// RSS is the process's resident set in bytes, 0 where /proc is missing.
func RSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
