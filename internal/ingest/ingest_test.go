package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/geo/geotest"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/sqlite"
	"github.com/provisionhq/provision/internal/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const xff = "X-Forwarded-For"

// env is one server over a real store, with a test location database and
// the client address taken from X-Forwarded-For.
type env struct {
	t      testing.TB
	srv    *ingest.Server
	http   *httptest.Server
	store  *sqlite.Store
	dbPath string
	logs   *syncBuffer
	rng    *rand.Rand
	seq    int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type option func(*ingest.Deps)

func newEnv(t testing.TB, opts ...option) *env {
	t.Helper()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "provision.db")
	store, err := sqlite.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	gdb, err := geo.Open(geotest.Write(t,
		geotest.Network{CIDR: "127.0.1.0/24", Country: "DE", Subdivision: "BY", City: "Munich"},
		geotest.Network{CIDR: "127.0.2.0/24", Country: "BR", Subdivision: "SP"},
		geotest.Network{CIDR: "2001:db8::/32", Country: "GB", Subdivision: "ENG"},
	))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	deps := ingest.Deps{
		Log:         store,
		Manifest:    manifest.Reference(),
		Geo:         gdb,
		ClientAddr:  ingest.TrustedHeader(xff),
		Ready:       store.Ping,
		Checkpoints: store,
		Consumers:   store.Consumers,
		Logger:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&deps)
	}
	srv, err := ingest.NewServer(deps)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		store.Close()
		gdb.Close()
	})
	return &env{t: t, srv: srv, http: hs, store: store, dbPath: dbPath, logs: logs, rng: rand.New(rand.NewPCG(1, 2))}
}

func withLimits(f func(*ingest.Limits)) option {
	return func(d *ingest.Deps) {
		l := ingest.DefaultLimits()
		f(&l)
		d.Limits = l
	}
}

func (e *env) batch(n int) provision.Batch {
	e.seq++
	return ingesttest.Batch(e.rng, fmt.Sprintf("batch-%d", e.seq), n, time.Now())
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) errorCode() string {
	var eb struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(r.body, &eb)
	return eb.Error.Code
}

func (r result) response(t testing.TB) wire.SubmitAnswer {
	t.Helper()
	var resp wire.SubmitAnswer
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatalf("response %s: %v", r.body, err)
	}
	return resp
}

// post sends a body with the given encoding; headers come in pairs.
func (e *env) post(body []byte, encoding string, headers ...string) result {
	e.t.Helper()
	return e.postReader(bytes.NewReader(body), int64(len(body)), encoding, headers...)
}

func (e *env) postReader(body io.Reader, length int64, encoding string, headers ...string) result {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.http.URL+"/v1/submit", body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", "application/json")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	req.Header.Set(xff, "127.0.1.10")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, b}
}

func (e *env) get(path string) result {
	e.t.Helper()
	resp, err := e.http.Client().Get(e.http.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, b}
}

func (e *env) records() []provision.Record {
	e.t.Helper()
	recs, err := e.store.Read(context.Background(), 0, 1<<20)
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// assertHealthy checks that the server still answers and still accepts a
// valid batch after whatever the test threw at it.
func (e *env) assertHealthy() {
	e.t.Helper()
	if r := e.get("/healthz"); r.status != 200 {
		e.t.Fatalf("/healthz = %d", r.status)
	}
	if r := e.get("/readyz"); r.status != 200 {
		e.t.Fatalf("/readyz = %d %s", r.status, r.body)
	}
	r := e.post(ingesttest.Gzip(ingesttest.JSON(e.batch(3))), "gzip")
	if r.status != 200 || r.response(e.t).Accepted != 3 {
		e.t.Fatalf("valid batch after hostile input = %d %s", r.status, r.body)
	}
}

func TestSubmitAcceptsEveryEncoding(t *testing.T) {
	e := newEnv(t)
	for _, enc := range []string{"gzip", "zstd", "identity", ""} {
		b := e.batch(40)
		body := ingesttest.JSON(b)
		switch enc {
		case "gzip":
			body = ingesttest.Gzip(body)
		case "zstd":
			body = ingesttest.Zstd(body)
		}
		r := e.post(body, enc)
		if r.status != 200 {
			t.Fatalf("%q: %d %s", enc, r.status, r.body)
		}
		resp := r.response(t)
		if resp.BatchID != b.ID || resp.Accepted != 40 || len(resp.Rejected) != 0 || resp.Duplicate {
			t.Errorf("%q: response %s", enc, r.body)
		}
	}
	recs := e.records()
	if len(recs) != 160 {
		t.Fatalf("%d records, want 160", len(recs))
	}
	for _, rec := range recs {
		switch rec.Event.Type {
		case "task":
			if rec.Country != "DE" || rec.Subdivision != "BY" || rec.Event.Fields["location.country"] != "DE" {
				t.Fatalf("%s record location %q %q", rec.Event.Type, rec.Country, rec.Subdivision)
			}
		default:
			// The manifest declares the location for task events only.
			if rec.Country != "" || rec.Event.Fields["location.country"] != nil {
				t.Fatalf("%s record got location %q", rec.Event.Type, rec.Country)
			}
		}
	}
}

func TestUnknownLocationWithoutDatabaseOrAddress(t *testing.T) {
	e := newEnv(t, func(d *ingest.Deps) { d.Geo = nil })
	r := e.post(ingesttest.JSON(e.batch(4)), "")
	if r.status != 200 {
		t.Fatal(r.status, string(r.body))
	}
	e2 := newEnv(t)
	// No trusted header: the address is unknown, never the proxy's.
	req, _ := http.NewRequest("POST", e2.http.URL+"/v1/submit", bytes.NewReader(ingesttest.JSON(e2.batch(4))))
	resp, err := e2.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, recs := range [][]provision.Record{e.records(), e2.records()} {
		for _, rec := range recs {
			if rec.Country != "" || rec.Subdivision != "" {
				t.Errorf("location %q %q, want unknown", rec.Country, rec.Subdivision)
			}
		}
	}
}

func TestDuplicateBatchGetsSameAnswer(t *testing.T) {
	e := newEnv(t)
	b := e.batch(10)
	b.Events[3].Fields["user.email"] = "someone@example.com"
	body := ingesttest.Gzip(ingesttest.JSON(b))
	first := e.post(body, "gzip")
	if first.status != 200 {
		t.Fatal(first.status, string(first.body))
	}
	again := e.post(body, "gzip")
	if again.status != 200 {
		t.Fatal(again.status, string(again.body))
	}
	want := strings.Replace(string(first.body), `"duplicate":false`, `"duplicate":true`, 1)
	if string(again.body) != want {
		t.Errorf("resend answered\n%s\nwant\n%s", again.body, want)
	}
	if n := len(e.records()); n != 9 {
		t.Errorf("%d records after resend, want 9", n)
	}
}

func TestPerEventRejections(t *testing.T) {
	e := newEnv(t)
	b := e.batch(8)
	now := time.Now()
	b.Events[1].Fields["user.email"] = "a@example.com"                      // undeclared
	b.Events[2].Fields["location.country"] = "FR"                           // not declared for a software event
	b.Events[4].Fields["task.duration"] = "long"                            // wrong type
	b.Events[5].Fields["error.code"] = strings.Repeat("9", 40)              // too long
	b.Events[6].ID = b.Events[0].ID                                         // duplicate id in the batch
	b.Events[7].Time = now.Add(-500 * 24 * time.Hour).Truncate(time.Second) // too old
	body := ingesttest.JSON(b)
	// Event 3 gets a time of the wrong type: it alone is malformed.
	body = bytes.Replace(body, []byte(fmt.Sprintf(`"id":%q,"type":"user_count","time":"`, b.Events[3].ID)),
		[]byte(fmt.Sprintf(`"id":%q,"type":"user_count","time":12,"x":"`, b.Events[3].ID)), 1)
	r := e.post(body, "")
	if r.status != 200 {
		t.Fatal(r.status, string(r.body))
	}
	resp := r.response(t)
	want := map[int]string{
		1: "undeclared_field", 2: "undeclared_field", 3: "malformed_event", 4: "wrong_type",
		5: "out_of_bounds", 6: "duplicate_event", 7: "bad_time",
	}
	got := map[int]string{}
	for _, rej := range resp.Rejected {
		got[rej.Index] = rej.Code
		if rej.Message == "" {
			t.Errorf("rejection %d has no message", rej.Index)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rejections = %v, want %v (%s)", got, want, r.body)
	}
	if resp.Accepted != 1 {
		t.Errorf("accepted = %d, want 1", resp.Accepted)
	}
	recs := e.records()
	if len(recs) != 1 || recs[0].Event.ID != b.Events[0].ID {
		t.Errorf("stored %v", recs)
	}
}

// bomb returns n zero bytes compressed: a tiny body that expands hugely.
func bomb(n int, enc string) []byte {
	zeros := make([]byte, n)
	if enc == "zstd" {
		return ingesttest.Zstd(zeros)
	}
	return ingesttest.Gzip(zeros)
}

func TestHostileInputs(t *testing.T) {
	e := newEnv(t, withLimits(func(l *ingest.Limits) {
		l.MaxBodyBytes = 1 << 20
		l.MaxDecompressedBytes = 4 << 20
		l.MaxEvents = 100
		l.MemoryBudget = 64 << 20
	}))
	valid := ingesttest.JSON(e.batch(5))
	gz := ingesttest.Gzip(valid)
	zs := ingesttest.Zstd(valid)

	// A batch whose JSON is large but compresses moderately (about 6x), to
	// pass the ratio check and hit the size limit.
	var big bytes.Buffer
	for big.Len() < 5<<20 {
		fmt.Fprintf(&big, "%x", e.rng.Uint64()%1000)
		big.WriteString(` {"a":"b"} `)
	}
	bigBatch := ingesttest.Gzip([]byte(`{"batch_id":"x","events":[],"pad":"` + big.String() + `"}`))

	tooMany := ingesttest.JSON(e.batch(101))

	cases := []struct {
		name     string
		body     []byte
		encoding string
		headers  []string
		status   int
		code     string
	}{
		{"oversize body", bytes.Repeat([]byte(" "), 2<<20), "", nil, 413, "body_too_large"},
		{"gzip bomb", bomb(256<<20, "gzip"), "gzip", nil, 413, "compression_ratio"},
		{"zstd bomb", bomb(1<<30, "zstd"), "zstd", nil, 413, ""},
		{"decompresses too large", bigBatch, "gzip", nil, 413, "decompressed_too_large"},
		{"truncated gzip", gz[:len(gz)/2], "gzip", nil, 400, "bad_compression"},
		{"gzip header on plain body", valid, "gzip", nil, 400, "bad_compression"},
		{"truncated zstd", zs[:len(zs)-9], "zstd", nil, 400, "bad_compression"},
		{"unknown encoding", valid, "br", nil, 415, "unsupported_encoding"},
		{"wrong content type", valid, "", []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"deep JSON", []byte(`{"batch_id":"x","events":[{"fields":{"a":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}}]}`), "", nil, 400, "too_deep"},
		{"very deep JSON", []byte(strings.Repeat("[", 100000)), "", nil, 400, "too_deep"},
		{"invalid UTF-8", bytes.Replace(valid, []byte("Secure Connection"), []byte("Secure\xff\xfeConnection"), 1), "", nil, 400, "bad_encoding"},
		{"not JSON", []byte("hello"), "", nil, 400, "bad_json"},
		{"empty body", nil, "", nil, 400, "bad_json"},
		{"trailing data", append(bytes.Clone(valid), []byte(`{}`)...), "", nil, 400, "bad_json"},
		{"events of wrong type", []byte(`{"batch_id":"x","events":"many"}`), "", nil, 400, "bad_json"},
		{"batch id of wrong type", bytes.Replace(valid, []byte(`"batch_id":"`), []byte(`"batch_id":7,"y":"`), 1), "", nil, 400, "bad_json"},
		{"undeclared envelope field", bytes.Replace(valid, []byte(`"batch_id":`), []byte(`"ip":"127.0.0.1","batch_id":`), 1), "", nil, 400, "unknown_field"},
		{"too many events", tooMany, "", nil, 400, "too_many_events"},
		{"unknown region", bytes.Replace(valid, []byte(`"region":"eu"`), []byte(`"region":"mars"`), 1), "", nil, 400, "region_not_declared"},
		{"bad installation id", bytes.Replace(valid, []byte(`"installation_id":"`), []byte(`"installation_id":"x`), 1), "", nil, 400, "wrong_type"},
		{"bad batch id", bytes.Replace(valid, []byte(`"batch_id":"`), []byte(`"batch_id":"../`), 1), "", nil, 400, "bad_batch"},
		{"no manifest version", bytes.Replace(valid, []byte(`"manifest_version":"2026.11.1"`), []byte(`"manifest_version":""`), 1), "", nil, 400, "bad_batch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(tc.body, tc.encoding, tc.headers...)
			if r.status != tc.status || (tc.code != "" && r.errorCode() != tc.code) {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if r.errorCode() == "" {
				t.Errorf("error body without a code: %s", r.body)
			}
			if r.header.Get("Retry-After") != "" {
				t.Errorf("permanent error with Retry-After")
			}
			e.assertHealthy()
		})
	}
	t.Run("oversize chunked body", func(t *testing.T) {
		r := e.postReader(io.MultiReader(bytes.NewReader(bytes.Repeat([]byte(" "), 2<<20))), -1, "")
		if r.status != 413 || r.errorCode() != "body_too_large" {
			t.Errorf("got %d %s", r.status, r.body)
		}
		e.assertHealthy()
	})
	t.Run("wrong method", func(t *testing.T) {
		r := e.get("/v1/submit")
		if r.status != 405 || r.errorCode() != "method_not_allowed" {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	if n := len(e.records()); n != 3*(len(cases)+1) {
		t.Errorf("%d records stored, want only the %d healthy-check events", n, 3*(len(cases)+1))
	}
}

func TestBombRefusedWhileStreaming(t *testing.T) {
	e := newEnv(t, withLimits(func(l *ingest.Limits) {
		l.MaxBodyBytes = 16 << 20
		l.MaxDecompressedBytes = 16 << 20
		l.MaxCompressionRatio = 1 << 30 // only the size limit applies
		l.MemoryBudget = 128 << 20
	}))
	r := e.post(bomb(64<<20, "gzip"), "gzip")
	if r.status != 413 || r.errorCode() != "decompressed_too_large" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	e.assertHealthy()
}

// blockingLog holds appends until released, to fill the server up.
type blockingLog struct {
	provision.Log
	entered chan struct{}
	release chan struct{}
}

func (b *blockingLog) Append(ctx context.Context, s *provision.Submission) ([]byte, bool, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Log.Append(ctx, s)
}

func TestOverloadIsAnsweredWithRetryAfter(t *testing.T) {
	var bl *blockingLog
	e := newEnv(t, withLimits(func(l *ingest.Limits) {
		l.MaxInFlight = 2
		l.QueueTimeout = 10 * time.Millisecond
	}), func(d *ingest.Deps) {
		bl = &blockingLog{Log: d.Log, entered: make(chan struct{}, 2), release: make(chan struct{})}
		d.Log = bl
	})
	var wg sync.WaitGroup
	results := make(chan result, 2)
	for range 2 {
		body := ingesttest.Gzip(ingesttest.JSON(e.batch(5)))
		wg.Go(func() { results <- e.post(body, "gzip") })
	}
	<-bl.entered
	<-bl.entered
	r := e.post(ingesttest.Gzip(ingesttest.JSON(e.batch(5))), "gzip")
	if r.status != 429 || r.errorCode() != "overloaded" || r.header.Get("Retry-After") == "" {
		t.Errorf("third submission = %d %s Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
	}
	close(bl.release)
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != 200 {
			t.Errorf("held submission = %d %s", r.status, r.body)
		}
	}
	e.assertHealthy()
	if m := e.get("/metrics"); !strings.Contains(string(m.body), `provision_submissions_shed_total{code="overloaded"} 1`) {
		t.Errorf("shed metric missing")
	}
}

func TestMemoryBudgetSheds(t *testing.T) {
	var bl *blockingLog
	e := newEnv(t, withLimits(func(l *ingest.Limits) {
		l.MaxBodyBytes = 4 << 20
		l.MaxDecompressedBytes = 4 << 20
		l.MemoryBudget = 4*(4<<20+32<<10) + 1<<20 + 4<<20 // exactly one largest batch
	}), func(d *ingest.Deps) {
		bl = &blockingLog{Log: d.Log, entered: make(chan struct{}, 1), release: make(chan struct{})}
		d.Log = bl
	})
	held := make(chan result, 1)
	// 500 events and one rejected for a 3.5 MB undeclared field: the
	// batch is stored, and holds its body's share until it is.
	var pad bytes.Buffer
	for pad.Len() < 3500<<10 {
		fmt.Fprintf(&pad, "%016x", e.rng.Uint64())
	}
	big := ingesttest.JSON(e.batch(500))
	big = bytes.Replace(big, []byte(`"events":[`), []byte(`"events":[{"id":"pad","type":"task","time":"2026-11-28T10:00:00Z","fields":{"pad":"`+pad.String()+`"}},`), 1)
	go func() { held <- e.post(ingesttest.Gzip(big), "gzip") }()
	select {
	case <-bl.entered:
	case r := <-held:
		t.Fatalf("held batch answered %d %s", r.status, r.body)
	}
	// The held batch keeps its share; a large one no longer fits.
	var large bytes.Buffer
	for large.Len() < 3<<20 {
		fmt.Fprintf(&large, "%016x", e.rng.Uint64())
	}
	r := e.post(ingesttest.Gzip(large.Bytes()), "gzip")
	if r.status != 503 || r.errorCode() != "overloaded" || r.header.Get("Retry-After") == "" {
		t.Errorf("over budget = %d %s", r.status, r.body)
	}
	close(bl.release)
	if r := <-held; r.status != 200 {
		t.Errorf("held = %d %s", r.status, r.body)
	}
}

func TestStoreFailureIsRetryable(t *testing.T) {
	e := newEnv(t)
	e.store.Close()
	r := e.post(ingesttest.Gzip(ingesttest.JSON(e.batch(5))), "gzip")
	if r.status != 503 || r.errorCode() != "unavailable" || r.header.Get("Retry-After") == "" {
		t.Errorf("submit with closed store = %d %s", r.status, r.body)
	}
	if r := e.get("/readyz"); r.status != 503 {
		t.Errorf("/readyz with closed store = %d", r.status)
	}
	if r := e.get("/healthz"); r.status != 200 {
		t.Errorf("/healthz = %d", r.status)
	}
}

func TestDrainRefusesNewSubmissions(t *testing.T) {
	e := newEnv(t)
	e.srv.Drain()
	r := e.post(ingesttest.Gzip(ingesttest.JSON(e.batch(5))), "gzip")
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("submit while draining = %d %s", r.status, r.body)
	}
	if r := e.get("/readyz"); r.status != 503 {
		t.Errorf("/readyz while draining = %d", r.status)
	}
}

func TestDeletionRoute(t *testing.T) {
	e := newEnv(t)
	resp, err := e.http.Client().Post(e.http.URL+"/v1/deletion", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if r := (result{resp.StatusCode, resp.Header, b}); r.status != 501 || r.errorCode() != "not_implemented" {
		t.Errorf("deletion without handler = %d %s", r.status, b)
	}

	plugged := newEnv(t, func(d *ingest.Deps) {
		d.Deletion = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
		})
	})
	resp, err = plugged.http.Client().Post(plugged.http.URL+"/v1/deletion", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Errorf("plugged deletion = %d", resp.StatusCode)
	}
}

func TestMetricsCountEvents(t *testing.T) {
	e := newEnv(t)
	b := e.batch(6)
	b.Events[2].Fields["user.email"] = "x@example.com"
	e.post(ingesttest.Gzip(ingesttest.JSON(b)), "gzip")
	if err := e.store.SetCheckpoint(t.Context(), "rollup", 1); err != nil {
		t.Fatal(err)
	}
	m := string(e.get("/metrics").body)
	for _, want := range []string{
		"provision_events_accepted_total 5",
		`provision_events_rejected_total{code="undeclared_field"} 1`,
		`provision_http_requests_total{code="200",route="submit"} 1`,
		"provision_log_head 5",
		`provision_log_lag{consumer="rollup"} 4`,
		"provision_http_request_duration_seconds_bucket",
		"provision_batch_body_bytes_bucket",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestLimitsValidateNamesField(t *testing.T) {
	for field, f := range map[string]func(*ingest.Limits){
		"limits.max_body_bytes":         func(l *ingest.Limits) { l.MaxBodyBytes = 0 },
		"limits.max_depth":              func(l *ingest.Limits) { l.MaxDepth = 3 },
		"limits.memory_budget":          func(l *ingest.Limits) { l.MemoryBudget = 1 << 20 },
		"limits.max_decompressed_bytes": func(l *ingest.Limits) { l.MaxDecompressedBytes = l.MaxBodyBytes - 1 },
		"limits.queue_timeout":          func(l *ingest.Limits) { l.QueueTimeout = -1 },
		"limits.max_clock_skew":         func(l *ingest.Limits) { l.MaxClockSkew = -1 },
		"limits.max_sent_at_skew":       func(l *ingest.Limits) { l.MaxSentAtSkew = -1 },
		"limits.min_body_rate":          func(l *ingest.Limits) { l.MinBodyRate = -1 },
		"limits.body_grace":             func(l *ingest.Limits) { l.BodyGrace = -1 },
		"limits.submit_rate":            func(l *ingest.Limits) { l.SubmitRate = -1 },
		"limits.submit_burst":           func(l *ingest.Limits) { l.SubmitBurst = 0 },
		"limits.deletion_rate":          func(l *ingest.Limits) { l.DeletionRate = 0 },
		"limits.deletion_burst":         func(l *ingest.Limits) { l.DeletionBurst = -1 },
		"limits.max_clients":            func(l *ingest.Limits) { l.MaxClients = 0 },
	} {
		l := ingest.DefaultLimits()
		f(&l)
		err := l.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: Validate() = %v", field, err)
		}
	}
	if err := ingest.DefaultLimits().Validate(); err != nil {
		t.Errorf("default limits: %v", err)
	}
}
