package sim

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/wire"
)

func TestMain(m *testing.M) {
	// The differential-privacy library behind the reports starts glog's
	// flush daemon at init; it is not ours to stop.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"))
}

// contractServer answers POST /v1/submit the way the wire contract says,
// validating with the real manifest; refuse makes the next n requests fail
// with 503 and Retry-After.
type contractServer struct {
	mu       sync.Mutex
	batches  map[string][]byte
	events   map[string]int
	addrs    map[string]bool
	users    map[string]map[string]bool // day → installation ids with a user_count
	refuse   atomic.Int32
	requests atomic.Int32
	// now, when set, is the server's clock: a batch whose sent_at is more
	// than a minute off it is counted in skewed, as a server would take
	// its device's clock for wrong.
	now    func() time.Time
	skewed atomic.Int32
	// delay holds each request this long, so that overlapping uploads
	// overlap here; inFlight and maxInFlight count them.
	delay       time.Duration
	inFlight    atomic.Int32
	maxInFlight atomic.Int32
}

func (s *contractServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.maxInFlight.Load(); n > m && !s.maxInFlight.CompareAndSwap(m, n); m = s.maxInFlight.Load() {
	}
	time.Sleep(s.delay)
	if s.refuse.Add(-1) >= 0 {
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"error":{"code":"overloaded","message":"try later"}}`, http.StatusServiceUnavailable)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, `{"error":{"code":"bad_encoding","message":"not gzip"}}`, http.StatusBadRequest)
		return
	}
	var b provision.Batch
	if err := json.NewDecoder(zr).Decode(&b); err != nil {
		http.Error(w, `{"error":{"code":"bad_json","message":"bad"}}`, http.StatusBadRequest)
		return
	}
	if s.now != nil && s.now().Sub(b.SentAt).Abs() > time.Minute {
		s.skewed.Add(1)
	}
	m := manifest.Reference()
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.batches[b.ID]; ok {
		w.Write(prev)
		return
	}
	if b.Region == "reject-me" {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":{"code":"region_not_declared","message":"no"}}`))
		return
	}
	s.addrs[r.Header.Get("X-Forwarded-For")] = true
	var rejected []wire.Rejection
	accepted := 0
	for i := range b.Events {
		if v := m.CheckEvent(nil, i, &b.Events[i], b.Region); len(v) > 0 {
			rejected = append(rejected, wire.Rejection{Index: i, Code: string(v[0].Code), Message: v[0].Message})
			continue
		}
		s.events[b.Events[i].ID]++
		accepted++
		if b.Events[i].Type == "user_count" {
			d := b.Events[i].Time.UTC().Format(time.DateOnly)
			if s.users[d] == nil {
				s.users[d] = map[string]bool{}
			}
			s.users[d][b.InstallationID] = true
		}
	}
	resp, _ := json.Marshal(map[string]any{"batch_id": b.ID, "accepted": accepted, "rejected": rejected, "duplicate": false})
	s.batches[b.ID] = resp
	w.Write(resp)
}

func newContractServer() *contractServer {
	return &contractServer{batches: map[string][]byte{}, events: map[string]int{}, addrs: map[string]bool{}, users: map[string]map[string]bool{}}
}

func startContractServer(t *testing.T) (*contractServer, *Client) {
	s := newContractServer()
	ts := httptest.NewTLSServer(s)
	t.Cleanup(ts.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	hc, err := NewHTTPClient(ca, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	return s, &Client{BaseURL: ts.URL, HTTP: hc, AddressHeader: "X-Forwarded-For"}
}

func TestRunDeliversEveryEventOnce(t *testing.T) {
	s, c := startContractServer(t)
	f := mustFleet(t, 120, 6, 11)
	truth := NewTruth(f, true)
	s.refuse.Store(5) // the first requests meet an overloaded server
	if err := Run(context.Background(), f, truth, RunOptions{ManifestVersion: manifest.Reference().Version, Send: c.Send, Workers: 4}); err != nil {
		t.Fatal(err)
	}
	delivered := truth.Delivered()
	if len(delivered) != truth.EventsGenerated() || len(delivered) != len(s.events) {
		t.Fatalf("generated %d, delivered %d, server stored %d", truth.EventsGenerated(), len(delivered), len(s.events))
	}
	for _, id := range delivered {
		if s.events[id] != 1 {
			t.Fatalf("event stored %d times", s.events[id])
		}
	}
	if truth.Sent.Retries < 5 {
		t.Errorf("%d retries after 5 refusals", truth.Sent.Retries)
	}
	if truth.Sent.Rejected != 0 {
		t.Errorf("%d events rejected: %v", truth.Sent.Rejected, truth.Sent.RejectionCodes)
	}
	if len(s.addrs) < 50 {
		t.Errorf("only %d distinct client addresses reached the server", len(s.addrs))
	}
}

func TestSendRecordsRefusalsAndRejections(t *testing.T) {
	s, c := startContractServer(t)
	f := mustFleet(t, 5, 1, 12)
	truth := NewTruth(f, true)
	ups := f.DayUploads(0, manifest.Reference().Version, truth)
	if len(ups) < 2 {
		t.Fatalf("%d uploads", len(ups))
	}

	bad := ups[0]
	bad.Batch.Region = "reject-me"
	res, err := c.Send(context.Background(), bad)
	if err != nil || res.Dropped != "region_not_declared" {
		t.Fatalf("permanent refusal: %+v, %v", res, err)
	}
	truth.record(bad, res)

	partly := ups[1]
	partly.Batch.Events[0].Fields["undeclared.item"] = "x"
	res, err = c.Send(context.Background(), partly)
	if err != nil || len(res.Rejected) != 1 || res.Rejected[0].Index != 0 || res.Rejected[0].Code != "undeclared_field" {
		t.Fatalf("rejection: %+v, %v", res, err)
	}
	truth.record(partly, res)
	// A resend gets the same answer and stores nothing twice.
	again, err := c.Send(context.Background(), partly)
	if err != nil || again.Accepted != res.Accepted {
		t.Fatalf("resend: %+v, %v", again, err)
	}
	if got, want := len(truth.Delivered()), len(partly.Batch.Events)-1; got != want {
		t.Errorf("delivered %d events, want %d", got, want)
	}
	if truth.Sent.DroppedBatches != 1 || truth.Sent.RejectionCodes["undeclared_field"] != 1 {
		t.Errorf("counters %+v", truth.Sent)
	}
	for id, n := range s.events {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
}

func TestSendStopsWithContext(t *testing.T) {
	s, c := startContractServer(t)
	s.refuse.Store(1 << 30)
	f := mustFleet(t, 1, 1, 13)
	ups := f.DayUploads(0, manifest.Reference().Version, NewTruth(f, false))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for s.requests.Load() < 3 { // until it has retried a few times
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := c.Send(ctx, ups[0]); err == nil {
		t.Fatal("Send returned no error after its context ended")
	}
}

func BenchmarkDayUploads(b *testing.B) {
	f := mustFleet(b, 1000, 400, 1)
	t := NewTruth(f, false)
	d := 0
	v := manifest.Reference().Version
	for b.Loop() {
		f.DayUploads(d%f.Days, v, t)
		d++
	}
	b.ReportMetric(float64(t.EventsGenerated())/b.Elapsed().Seconds(), "events/s")
}

// TestSendFailsFastOnAnUntrustedCertificate: a server whose certificate
// does not verify (simulate without --ca) ends the run at once with the
// certificate error, after one handshake, instead of retrying in silence.
func TestSendFailsFastOnAnUntrustedCertificate(t *testing.T) {
	var handshakes atomic.Int32
	ts := httptest.NewUnstartedServer(newContractServer())
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			handshakes.Add(1)
		}
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	hc, err := NewHTTPClient(nil, 1) // the system's roots, which do not know the test CA
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	c := &Client{BaseURL: ts.URL, HTTP: hc}
	f := mustFleet(t, 3, 1, 14)
	truth := NewTruth(f, false)
	err = Run(context.Background(), f, truth, RunOptions{ManifestVersion: manifest.Reference().Version, Send: c.Send, Workers: 1})
	if err == nil {
		t.Fatal("the run succeeded against an untrusted certificate")
	}
	if !wire.IsCertificateError(err) || wire.IsRetryable(err) {
		t.Fatalf("error %q is not a permanent certificate error", err)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("the error does not say what is wrong: %q", err)
	}
	if n := handshakes.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a permanent error was retried", n)
	}
}
