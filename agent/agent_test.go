package agent

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/wire"
	"github.com/provisionhq/provision/internal/wire/wiretest"
)

// The wire-bytes test starts the real server, whose dependencies start
// glog's flush daemon at init.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"))
}

var testSoftware = Software{Type: "vpn", Name: "Secure Connection", Version: "5.14.0.1234", Edition: "premium", Localization: "en-GB"}

func testOS(context.Context) (OSInfo, error) {
	return OSInfo{Type: "linux", Version: "12 (bookworm)", Edition: "Debian GNU/Linux",
		UpdatePackages: []string{"base-files=12.4+deb12u5", "linux-image-6.1.0-18-amd64=6.1.76-1"}}, nil
}

func openAgent(t testing.TB, dir string, mod ...func(*Config)) *Agent {
	t.Helper()
	cfg := Config{StateDir: dir, Software: testSoftware, LicenseProviderSite: "https://shop.example.com/order?id=42", ReadOS: testOS}
	for _, f := range mod {
		f(&cfg)
	}
	a, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// serverCA writes the test server's certificate as a PEM CA file.
func serverCA(t testing.TB, s *wiretest.Server) string { return s.CAFile(t) }

// newServer starts the real ingest handler for the test.
func newServer(t testing.TB) *wiretest.Server { return wiretest.New(t, wiretest.Options{}) }

// sleeps records the waits the uploader chose between tries.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) record(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
}

// upload sends to s with waits between tries short enough for a test
// (a server's Retry-After still counts in full).
func upload(t testing.TB, s *wiretest.Server, sl *sleeps) Upload {
	return Upload{Server: s.URL, CAFile: serverCA(t, s), BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond, onRetry: sl.record}
}

func TestNothingIsCollectedBeforeConsent(t *testing.T) {
	srv := newServer(t)
	defer srv.Close()
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	if err := a.RecordError(ctx, UIError{Type: "crash", Code: "E1"}); !errors.Is(err, ErrNoConsent) {
		t.Fatalf("RecordError before consent: %v", err)
	}
	if err := a.RecordTask(ctx, Task{Type: TaskInstall, Status: TaskSuccess}); !errors.Is(err, ErrNoConsent) {
		t.Fatalf("RecordTask before consent: %v", err)
	}
	if _, err := a.Collect(ctx); !errors.Is(err, ErrNoConsent) {
		t.Fatalf("Collect before consent: %v", err)
	}
	if _, err := a.RecordTLSChain(ctx, [][]byte{srv.Certificate().Raw}); !errors.Is(err, ErrNoConsent) {
		t.Fatalf("RecordTLSChain before consent: %v", err)
	}
	res, err := a.RunTask(ctx, TaskRun{Type: TaskInstall, Command: []string{"true"}})
	if err != nil || res.Recorded || res.ExitCode != 0 {
		t.Fatalf("RunTask before consent: %+v, %v", res, err)
	}
	var sl sleeps
	if _, err := a.Flush(ctx, upload(t, srv, &sl)); err != nil {
		t.Fatal(err)
	}
	st, _ := a.Status()
	if st.Events != 0 || srv.Requests() != 0 {
		t.Fatalf("before consent: %d events queued, %d requests sent", st.Events, srv.Requests())
	}
	p, _ := a.DryRun(ctx, Upload{})
	if len(p.Batches) != 0 {
		t.Fatalf("dry run before consent would send %d batches", len(p.Batches))
	}
}

func TestCollectRecordFlushAgainstContractServer(t *testing.T) {
	srv := newServer(t)
	defer srv.Close()
	dir := t.TempDir()
	a := openAgent(t, dir)
	ctx := context.Background()
	c, err := a.Accept(provision.RegionEU)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := a.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.Queued, ",") != "software,os,license,user_count" {
		t.Fatalf("queued %v, skipped %v", rep.Queued, rep.Skipped)
	}
	if rep, _ := a.Collect(ctx); len(rep.Queued) != 0 || len(rep.Unchanged) != 4 {
		t.Fatalf("second collection the same day queued %v", rep.Queued)
	}
	for range 200 {
		if err := a.RecordError(ctx, UIError{Type: "connection_failed", Code: "E42", ControlID: "connect_button"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.RecordTask(ctx, Task{Type: TaskUpgrade, Status: TaskFailure, ErrorType: "exit_code", ErrorCode: "1603", Duration: 93 * time.Second, CampaignID: "spring-2026"}); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := a.RecordTLSChain(ctx, [][]byte{srv.Certificate().Raw}); err != nil {
			t.Fatal(err)
		}
	}
	preview, err := a.DryRun(ctx, Upload{})
	if err != nil {
		t.Fatal(err)
	}
	if len(preview.Batches) != 1 || len(preview.Batches[0].Events) != 7 {
		t.Fatalf("dry run: %d batches, want 1 of 7 events", len(preview.Batches))
	}

	var sl sleeps
	frep, err := a.Flush(ctx, upload(t, srv, &sl))
	if err != nil {
		t.Fatal(err)
	}
	if frep.Accepted != 7 || frep.Rejected != 0 {
		t.Fatalf("flush: %+v", frep)
	}
	got := srv.Batches()
	if len(got) != 1 || got[0].InstallationID != c.InstallationID || got[0].Region != "eu" {
		t.Fatalf("server got %+v", got)
	}
	m := manifest.Reference()
	byType := map[string]provision.Event{}
	for i, ev := range got[0].Events {
		if v := m.CheckEvent(nil, i, &ev, "eu"); len(v) > 0 {
			t.Errorf("server holds an undeclared event: %v", v)
		}
		byType[ev.Type] = ev
	}
	if n := byType["ui_error"].Fields["event.count"]; n == nil || n.(interface{ String() string }).String() != "200" {
		t.Errorf("ui_error count = %v, want 200", n)
	}
	if n := byType["tls_connection"].Fields["event.count"]; n == nil || n.(interface{ String() string }).String() != "50" {
		t.Errorf("tls_connection count = %v, want 50", n)
	}
	if s := byType["license"].Fields["license.provider_site"]; s != "https://shop.example.com" {
		t.Errorf("licence site = %v", s)
	}
	if d := byType["task"].Fields["task.duration"]; d == nil || d.(interface{ String() string }).String() != "93000" {
		t.Errorf("task duration = %v", d)
	}
	for _, it := range append(m.ItemsFor("user_count", "google_analytics", "eu"), m.ItemsFor("user_count", "third_party", "eu")...) {
		if _, ok := byType["user_count"].Fields[it.ID]; !ok {
			t.Errorf("user_count lacks %s, declared for the analytics recipients", it.ID)
		}
	}
	st, _ := a.Status()
	if st.Events != 0 || st.Inflight {
		t.Fatalf("after flush: %+v", st)
	}
	sent, err := a.Sent(0)
	if err != nil || len(sent) != 1 || sent[0].Status != "accepted" || sent[0].Accepted != 7 || len(sent[0].Batch) == 0 {
		t.Fatalf("sent log = %+v, %v", sent, err)
	}
	if len(sl.d) != 0 {
		t.Fatalf("waited %v on a willing server", sl.d)
	}
}

func TestRetryAfterIsHonouredThenTheSameBatchIsAccepted(t *testing.T) {
	srv := newServer(t)
	defer srv.Close()
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	if _, err := a.Accept("uk"); err != nil {
		t.Fatal(err)
	}
	if err := a.RecordError(ctx, UIError{Type: "crash", Code: "E1"}); err != nil {
		t.Fatal(err)
	}
	srv.Refuse(2, time.Second)
	var sl sleeps
	up := upload(t, srv, &sl)
	rep, err := a.Flush(ctx, up)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 1 || len(sl.d) != 2 {
		t.Fatalf("report %+v after waits %v", rep, sl.d)
	}
	for _, d := range sl.d {
		if d < time.Second {
			t.Errorf("waited %s, less than Retry-After 1 s", d)
		}
	}
	att := srv.Attempts()
	if len(att) != 1 {
		t.Fatalf("%d batch ids used for one batch: %v", len(att), att)
	}
	for _, n := range att {
		if n != 3 {
			t.Fatalf("batch posted %d times, want 3", n)
		}
	}
}

func TestBackoffGrowsAndGivesUpKeepingTheBatch(t *testing.T) {
	srv := newServer(t)
	defer srv.Close()
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	_, _ = a.Accept("br")
	_ = a.RecordError(ctx, UIError{Type: "crash", Code: "E1"})
	srv.FailWith(http.StatusServiceUnavailable, wire.CodeUnavailable)
	var sl sleeps
	up := upload(t, srv, &sl)
	up.BackoffMax = time.Second
	up.MaxAttempts = 6
	if _, err := a.Flush(ctx, up); err == nil {
		t.Fatal("flush reported success against a refusing server")
	}
	if len(sl.d) != 5 {
		t.Fatalf("waits %v, want 5", sl.d)
	}
	// Exponential from 1 ms with ±50 % jitter: the last wait (8-24 ms)
	// is longer than the first (0.5-1.5 ms).
	if sl.d[4] <= sl.d[0] {
		t.Fatalf("backoff did not grow: %v", sl.d)
	}
	st, _ := a.Status()
	if st.Events != 1 || !st.Inflight {
		t.Fatalf("batch not kept: %+v", st)
	}
	// The next flush resends the same batch id; the server takes it.
	srv.FailWith(0, "")
	if rep, err := a.Flush(ctx, up); err != nil || rep.Accepted != 1 {
		t.Fatalf("second flush: %+v, %v", rep, err)
	}
	if len(srv.Attempts()) != 1 {
		t.Fatalf("resend used a new batch id: %v", srv.Attempts())
	}
}

func TestNetworkErrorKeepsEvents(t *testing.T) {
	srv := newServer(t)
	ca := serverCA(t, srv)
	url := srv.URL
	srv.Close()
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	_, _ = a.Accept("eu")
	_ = a.RecordError(ctx, UIError{Type: "crash", Code: "E1"})
	var sl sleeps
	if _, err := a.Flush(ctx, Upload{Server: url, CAFile: ca, BackoffBase: time.Millisecond, onRetry: sl.record, MaxAttempts: 3}); err == nil {
		t.Fatal("flush to a closed server succeeded")
	}
	if st, _ := a.Status(); st.Events != 1 {
		t.Fatalf("events lost on a network error: %+v", st)
	}
	if len(sl.d) != 2 {
		t.Fatalf("waits = %v", sl.d)
	}
}

func TestRejectedEventsAndRefusedBatchesAreDroppedAndRecorded(t *testing.T) {
	// The server's manifest does not declare task.duration for the EU, so
	// it rejects the task event the agent sends.
	srv := wiretest.New(t, wiretest.Options{Manifest: narrowed(t, "task.duration", "uk")})
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	_, _ = a.Accept("eu")
	_ = a.RecordError(ctx, UIError{Type: "crash", Code: "E1"})
	_ = a.RecordTask(ctx, Task{Type: TaskInstall, Status: TaskSuccess, Duration: time.Second})
	var sl sleeps
	rep, err := a.Flush(ctx, upload(t, srv, &sl))
	if err != nil || rep.Accepted != 1 || rep.Rejected != 1 {
		t.Fatalf("flush: %+v, %v", rep, err)
	}
	sent, _ := a.Sent(1)
	if len(sent[0].Rejected) != 1 || sent[0].Rejected[0].Type != "task" || sent[0].Rejected[0].Code != string(manifest.CodeRegionNotDeclared) {
		t.Fatalf("rejection not recorded: %+v", sent[0])
	}
	if st, _ := a.Status(); st.Events != 0 {
		t.Fatalf("rejected event kept: %+v", st)
	}

	_ = a.RecordError(ctx, UIError{Type: "crash", Code: "E2"})
	srv.FailWith(http.StatusBadRequest, wire.CodeBadBatch)
	rep, err = a.Flush(ctx, upload(t, srv, &sl))
	if err != nil || rep.Refused != 1 {
		t.Fatalf("flush against 400: %+v, %v", rep, err)
	}
	sent, _ = a.Sent(1)
	if sent[0].Status != "refused" || sent[0].Error == nil || sent[0].Error.Code != wire.CodeBadBatch {
		t.Fatalf("refusal not recorded: %+v", sent[0])
	}
	if st, _ := a.Status(); st.Events != 0 || st.Inflight {
		t.Fatalf("refused batch kept: %+v", st)
	}
	if len(sl.d) != 0 {
		t.Fatalf("retried a permanent refusal: %v", sl.d)
	}
}

func TestWithdrawalEmptiesQueuesDeletionAndSurvivesRestart(t *testing.T) {
	srv := newServer(t)
	defer srv.Close()
	dir := t.TempDir()
	ctx := context.Background()
	a := openAgent(t, dir, func(c *Config) { c.Limits.MaxEvents = 3 })
	first, _ := a.Accept("us-ca")
	_, _ = a.Collect(ctx)
	if _, err := a.Withdraw(); err != nil {
		t.Fatal(err)
	}
	if err := a.RecordError(ctx, UIError{Type: "crash", Code: "E1"}); !errors.Is(err, ErrNoConsent) {
		t.Fatalf("recording after withdrawal: %v", err)
	}
	st, _ := a.Status()
	if st.Events != 0 || st.Deletions != 1 {
		t.Fatalf("after withdrawal: %+v", st)
	}
	a.Close()

	// Restart; accept again and fill past the bounds: the deletion stays.
	a = openAgent(t, dir, func(c *Config) { c.Limits.MaxEvents = 3 })
	second, _ := a.Accept("us-ca")
	if second.InstallationID == first.InstallationID {
		t.Fatal("re-acceptance kept the old installation id")
	}
	for i := range 10 {
		_ = a.RecordError(ctx, UIError{Type: "crash", Code: "E" + string(rune('0'+i))})
	}
	if st, _ := a.Status(); st.Deletions != 1 || st.Events != 3 || st.Dropped == 0 {
		t.Fatalf("after restart and overflow: %+v", st)
	}
	p, _ := a.DryRun(ctx, Upload{})
	if len(p.Deletions) != 1 || p.Deletions[0].InstallationID != first.InstallationID {
		t.Fatalf("dry run deletions = %+v", p.Deletions)
	}
	var sl sleeps
	rep, err := a.Flush(ctx, upload(t, srv, &sl))
	if err != nil || rep.Deletions != 1 {
		t.Fatalf("flush: %+v, %v", rep, err)
	}
	d := srv.Deletions()
	if len(d) != 1 || d[0].InstallationID != first.InstallationID {
		t.Fatalf("server deletions = %v", d)
	}
	for _, b := range srv.Batches() {
		if b.InstallationID == first.InstallationID {
			t.Fatal("events of the withdrawn id were sent")
		}
	}
}

func TestStateIsPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX permissions")
	}
	dir := filepath.Join(t.TempDir(), "state")
	a := openAgent(t, dir)
	if _, err := a.Accept("eu"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "outbox.db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("outbox file mode %v, %v", fi.Mode(), err)
	}
	di, _ := os.Stat(dir)
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v", di.Mode())
	}
}

func TestUploadSecurity(t *testing.T) {
	srv := newServer(t)
	defer srv.Close()
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	_, _ = a.Accept("eu")
	_ = a.RecordError(ctx, UIError{Type: "crash", Code: "E1"})
	var sl sleeps
	if _, err := a.Flush(ctx, Upload{Server: strings.Replace(srv.URL, "https", "http", 1)}); err == nil || !strings.Contains(err.Error(), "only https") {
		t.Fatalf("plain http: %v", err)
	}
	if _, err := a.Flush(ctx, Upload{Server: srv.URL, onRetry: sl.record}); err == nil {
		t.Fatal("a server signed by an unknown CA was trusted")
	}
	// Permanent: not retried, and the data stays for a fixed configuration.
	if st, _ := a.Status(); len(sl.d) != 0 || (st.Events == 0 && !st.Inflight) {
		t.Fatalf("after an unverifiable certificate: waits %v, status %+v", sl.d, st)
	}
	up := upload(t, srv, &sl)
	up.MaxAttempts = 1
	up.Pin = strings.Repeat("ab", 32)
	up.MaxAttempts = 5
	if _, err := a.Flush(ctx, up); err == nil {
		t.Fatal("a server not matching the pin was trusted")
	}
	if len(sl.d) != 0 {
		t.Fatalf("a pin mismatch was retried: %v", sl.d)
	}
	up.Pin = certs.SPKISHA256Hex(srv.Certificate())
	up.Encoding = "zstd"
	if rep, err := a.Flush(ctx, up); err != nil || rep.Accepted != 1 {
		t.Fatalf("pinned zstd flush: %+v, %v", rep, err)
	}
	if enc := srv.Encodings(); enc[len(enc)-1] != "zstd" {
		t.Fatalf("encodings = %v", enc)
	}
}

func TestRunTaskRecordsRealOutcomes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses sh")
	}
	srv := newServer(t)
	defer srv.Close()
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	_, _ = a.Accept("eu")
	cases := []struct {
		cmd    []string
		status string
		code   string
		exit   int
	}{
		{[]string{"sh", "-c", "exit 0"}, TaskSuccess, "", 0},
		{[]string{"sh", "-c", "exit 3"}, TaskFailure, "3", 3},
		{[]string{"sh", "-c", "exit 3010"}, TaskFailure, "194", 194}, // POSIX keeps 8 bits
		{[]string{"sh", "-c", "kill -TERM $$"}, TaskCancelled, "", -1},
		{[]string{"/nonexistent/installer"}, TaskFailure, "not_found", -1},
	}
	for _, c := range cases {
		res, err := a.RunTask(ctx, TaskRun{Type: TaskUpgrade, CampaignID: "c1", Command: c.cmd})
		if err != nil || !res.Recorded || res.Task.Status != c.status || res.Task.ErrorCode != c.code || res.ExitCode != c.exit {
			t.Errorf("%v: %+v, %v", c.cmd, res, err)
		}
	}
	if _, err := a.RunTask(ctx, TaskRun{Type: "format_disk", Command: []string{"true"}}); err == nil {
		t.Error("an undeclared task type was accepted")
	}
	var sl sleeps
	rep, err := a.Flush(ctx, upload(t, srv, &sl))
	if err != nil || rep.Accepted != len(cases) {
		t.Fatalf("flush: %+v, %v", rep, err)
	}
}

func TestOriginKeepsSchemeAndHostOnly(t *testing.T) {
	good := map[string]string{
		"https://Shop.Example.com/buy?id=7#x":   "https://shop.example.com",
		"http://user:pw@partner.example:8080/a": "http://partner.example:8080",
		"https://shop.example.com:443/":         "https://shop.example.com",
		"https://[2001:db8::1]/p":               "https://[2001:db8::1]",
	}
	for in, want := range good {
		got, err := Origin(in)
		if err != nil || got != want {
			t.Errorf("Origin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"ftp://shop.example.com", "shop.example.com", "https://", "javascript:alert(1)"} {
		if _, err := Origin(in); err == nil {
			t.Errorf("Origin(%q) accepted", in)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := Open(Config{}); err == nil {
		t.Error("no state dir accepted")
	}
	if _, err := Open(Config{StateDir: t.TempDir(), Software: Software{Type: "spyware"}}); err == nil {
		t.Error("undeclared software type accepted")
	}
	if _, err := Open(Config{StateDir: t.TempDir(), LicenseProviderSite: "ftp://x"}); err == nil {
		t.Error("ftp licence site accepted")
	}
	a := openAgent(t, t.TempDir())
	if _, err := a.Accept("mars"); err == nil {
		t.Error("unknown region accepted")
	}
}

func TestIntervalNeverDividesADay(t *testing.T) {
	for _, d := range []time.Duration{0, time.Hour, 8 * time.Hour, 6 * time.Hour, 30 * time.Minute} {
		u := Upload{Interval: d}.withDefaults()
		if (24*time.Hour)%u.Interval == 0 {
			t.Errorf("interval %s divides a day", u.Interval)
		}
	}
}

func TestRunUploadsInTheBackgroundAndStops(t *testing.T) {
	srv := newServer(t)
	defer srv.Close()
	a := openAgent(t, t.TempDir())
	_, _ = a.Accept("eu")
	ctx, cancel := context.WithCancel(context.Background())
	var waits []time.Duration
	var mu sync.Mutex
	up := Upload{Server: srv.URL, CAFile: serverCA(t, srv), Interval: 2 * time.Hour, Sleep: func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		n := len(waits)
		mu.Unlock()
		if n > 3 {
			cancel()
			return ctx.Err()
		}
		return nil
	}}
	if err := a.Run(ctx, up); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if len(srv.Batches()) == 0 {
		t.Fatal("the background uploader sent nothing")
	}
	for _, w := range waits[1:3] {
		if w < time.Duration(0.8*float64(up.Interval+7*time.Minute)) || w > time.Duration(1.2*float64(up.Interval+7*time.Minute)) {
			t.Errorf("wait %s outside the jittered interval", w)
		}
	}
}

func TestDeletionNotTakenIsKeptAndEventsStillGo(t *testing.T) {
	srv := newServer(t)
	defer srv.Close()
	srv.FailDeletions(http.StatusNotImplemented, wire.CodeNotImplemented)
	a := openAgent(t, t.TempDir())
	ctx := context.Background()
	_, _ = a.Accept("eu")
	_, _ = a.Withdraw()
	_, _ = a.Accept("eu")
	_ = a.RecordError(ctx, UIError{Type: "crash", Code: "E1"})
	var sl sleeps
	up := upload(t, srv, &sl)
	up.MaxAttempts = 2
	rep, err := a.Flush(ctx, up)
	if err == nil || !strings.Contains(err.Error(), "deletion request kept") {
		t.Fatalf("flush error = %v", err)
	}
	if rep.Accepted != 1 {
		t.Fatalf("events waited behind the deletion: %+v", rep)
	}
	if st, _ := a.Status(); st.Deletions != 1 {
		t.Fatalf("deletion request lost: %+v", st)
	}
	srv.FailDeletions(0, "")
	if rep, err := a.Flush(ctx, up); err != nil || rep.Deletions != 1 {
		t.Fatalf("second flush: %+v, %v", rep, err)
	}
}

// narrowed is the reference manifest with the item declared for the one
// region only.
func narrowed(t testing.TB, item, region string) *manifest.Manifest {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(manifest.ReferenceYAML(), &doc); err != nil {
		t.Fatal(err)
	}
	found := false
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			var id, regions *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				switch n.Content[i].Value {
				case "id":
					id = n.Content[i+1]
				case "regions":
					regions = n.Content[i+1]
				}
			}
			if id != nil && id.Value == item && regions != nil {
				regions.Content = []*yaml.Node{{Kind: yaml.ScalarNode, Value: region}}
				found = true
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	if !found {
		t.Fatalf("no item %s with regions in the reference manifest", item)
	}
	data, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse("narrowed.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
