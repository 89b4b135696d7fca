package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/wire"
)

// TestSlowBodyIsCutOff sends a body at a trickle on a raw connection: the
// server answers 408 too_slow once the body falls under the minimum rate,
// and meanwhile a normal upload goes through (the slow body holds no
// processing slot).
func TestSlowBodyIsCutOff(t *testing.T) {
	e := newEnv(t, withLimits(func(l *ingest.Limits) {
		l.MinBodyRate = 1000
		l.BodyGrace = 300 * time.Millisecond
		l.MaxInFlight = 1
	}))
	conns := make([]net.Conn, 3)
	for i := range conns {
		c, err := net.Dial("tcp", e.http.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Forwarded-For: 192.0.2.%d\r\nContent-Length: 100000\r\n\r\n{", i+1)
		conns[i] = c
	}
	// While they trickle, a normal client uploads.
	start := time.Now()
	if r := e.post(ingesttest.Gzip(ingesttest.JSON(e.batch(5))), "gzip"); r.status != 200 {
		t.Errorf("normal upload during the trickle = %d %s", r.status, r.body)
	}
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		for range 100 {
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("conn %d: status %d, want 408", i, resp.StatusCode)
		}
	}
	t.Logf("slow bodies cut off after %v", time.Since(start))
	<-trickled
	if n := len(e.records()); n != 5 {
		t.Errorf("%d records, want the normal upload's 5", n)
	}
}

// TestClientRateLimits: a client over its rate is answered 429 with
// Retry-After on submission and deletion, other clients are not, IPv6
// clients are counted by /64, and loopback is not limited.
func TestClientRateLimits(t *testing.T) {
	var deletions atomic.Int64
	e := newEnv(t, withLimits(func(l *ingest.Limits) {
		l.SubmitRate, l.SubmitBurst = 0.5, 3
		l.DeletionRate, l.DeletionBurst = 0.5, 2
	}), func(d *ingest.Deps) {
		d.Deletion = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			deletions.Add(1)
			w.WriteHeader(http.StatusAccepted)
		})
	})
	submit := func(addr string) result {
		return e.post(ingesttest.Gzip(ingesttest.JSON(e.batch(1))), "gzip", xff, addr)
	}
	for i := range 3 {
		if r := submit("192.0.2.7"); r.status != 200 {
			t.Fatalf("submission %d within the burst = %d %s", i, r.status, r.body)
		}
	}
	r := submit("192.0.2.7")
	if r.status != 429 || r.errorCode() != wire.CodeRateLimited {
		t.Fatalf("over the rate = %d %s", r.status, r.body)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 2 {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	if r := submit("192.0.2.8"); r.status != 200 {
		t.Errorf("another client = %d", r.status)
	}
	for range 3 {
		submit("2001:db8:1:2::1")
	}
	if r := submit("2001:db8:1:2::ffff"); r.status != 429 {
		t.Errorf("same /64 = %d, want 429", r.status)
	}
	if r := submit("2001:db8:1:3::1"); r.status != 200 {
		t.Errorf("another /64 = %d", r.status)
	}
	for range 10 {
		if r := submit("127.0.1.10"); r.status != 200 {
			t.Fatalf("loopback = %d", r.status)
		}
	}

	del := func(addr string) int {
		req, _ := http.NewRequest("POST", e.http.URL+"/v1/deletion", strings.NewReader(`{}`))
		req.Header.Set(xff, addr)
		resp, err := e.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	got := []int{del("192.0.2.9"), del("192.0.2.9"), del("192.0.2.9")}
	if got[0] != 202 || got[1] != 202 || got[2] != 429 {
		t.Errorf("deletions = %v, want 202 202 429", got)
	}
	if n := deletions.Load(); n != 2 {
		t.Errorf("%d deletions reached the handler, want 2", n)
	}
	if strings.Contains(e.logs.String(), "192.0.2.") || strings.Contains(e.logs.String(), "2001:db8") {
		t.Errorf("a client address is in the logs")
	}
}

// fullStore fails appends and its readiness probe while its disk is
// "full", as SQLite does with SQLITE_FULL.
type fullStore struct {
	provision.Log
	full atomic.Bool
}

var errFull = fmt.Errorf("database or disk is full: %w", provision.ErrUnavailable)

func (f *fullStore) Append(ctx context.Context, s *provision.Submission) ([]byte, bool, error) {
	if f.full.Load() {
		return nil, false, errFull
	}
	return f.Log.Append(ctx, s)
}

// TestReadinessHeals: after a failed append /readyz is 503, and it is 200
// again as soon as the store's own probe passes, with no upload needed.
func TestReadinessHeals(t *testing.T) {
	var fs *fullStore
	e := newEnv(t, func(d *ingest.Deps) {
		fs = &fullStore{Log: d.Log}
		ping := d.Ready
		d.Log = fs
		d.Ready = func(ctx context.Context) error {
			if fs.full.Load() {
				return errFull
			}
			return ping(ctx)
		}
	})
	fs.full.Store(true)
	if r := e.post(ingesttest.Gzip(ingesttest.JSON(e.batch(2))), "gzip"); r.status != 503 {
		t.Fatalf("append to a full store = %d", r.status)
	}
	if r := e.get("/readyz"); r.status != 503 {
		t.Errorf("/readyz with a full store = %d", r.status)
	}
	fs.full.Store(false) // space returns
	if r := e.get("/readyz"); r.status != 200 {
		t.Errorf("/readyz after space returned = %d %s", r.status, r.body)
	}
	if errors.Is(errFull, provision.ErrUnavailable) {
		e.assertHealthy()
	}
}

// TestConnectionsAreReused: a body read to its end leaves the connection
// open for the next request, whatever the encoding; only an abandoned body
// closes it.
func TestConnectionsAreReused(t *testing.T) {
	e := newEnv(t)
	for _, enc := range []string{"gzip", "zstd", "identity"} {
		body := ingesttest.JSON(e.batch(3))
		switch enc {
		case "gzip":
			body = ingesttest.Gzip(body)
		case "zstd":
			body = ingesttest.Zstd(body)
		}
		var reused []bool
		for range 2 {
			req, _ := http.NewRequest("POST", e.http.URL+"/v1/submit", bytes.NewReader(body))
			req.Header.Set("Content-Encoding", enc)
			req.Header.Set(xff, "127.0.1.10")
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
			}))
			resp, err := e.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Close {
				t.Errorf("%s: %d, close %v", enc, resp.StatusCode, resp.Close)
			}
		}
		if len(reused) != 2 || !reused[1] {
			t.Errorf("%s: connection reused %v", enc, reused)
		}
	}
}

// TestReadinessProbeIsShared: /readyz does not turn into a synced write per
// request. A passing probe is reused (the calls below come far closer
// together than its second), an append failure forces a fresh probe, and a
// failing probe is retried on every request so that recovery shows at once.
func TestReadinessProbeIsShared(t *testing.T) {
	var probes atomic.Int64
	var failing atomic.Bool
	var fs *fullStore
	e := newEnv(t, func(d *ingest.Deps) {
		fs = &fullStore{Log: d.Log}
		d.Log = fs
		ping := d.Ready
		d.Ready = func(ctx context.Context) error {
			probes.Add(1)
			if failing.Load() {
				return errFull
			}
			return ping(ctx)
		}
	})
	before := probes.Load()
	for i := 0; i < 20; i++ {
		if r := e.get("/readyz"); r.status != 200 {
			t.Fatalf("/readyz = %d %s", r.status, r.body)
		}
	}
	if n := probes.Load() - before; n >= 20 {
		t.Errorf("20 /readyz ran %d probes", n)
	}

	fs.full.Store(true)
	failing.Store(true)
	if r := e.post(ingesttest.Gzip(ingesttest.JSON(e.batch(2))), "gzip"); r.status != 503 {
		t.Fatalf("append to a full store = %d", r.status)
	}
	before = probes.Load()
	for i := 0; i < 3; i++ {
		if r := e.get("/readyz"); r.status != 503 {
			t.Errorf("/readyz after a failed append = %d", r.status)
		}
	}
	if n := probes.Load() - before; n != 3 {
		t.Errorf("3 /readyz on a failing store ran %d probes, want 3", n)
	}
	fs.full.Store(false)
	failing.Store(false)
	if r := e.get("/readyz"); r.status != 200 {
		t.Errorf("/readyz after recovery = %d %s", r.status, r.body)
	}
}
