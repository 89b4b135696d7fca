package forward_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/forward/forwardtest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/memlog"
	"github.com/provisionhq/provision/internal/wire"
)

var day1 = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

func TestStateContract(t *testing.T) {
	forwardtest.TestState(t, func(*testing.T) forward.State { return forwardtest.NewState() })
}

// A field declared for one recipient only never reaches the other, and a
// field declared for neither never leaves, whatever the event holds.
func TestFieldDeclaredForOneRecipientOnly(t *testing.T) {
	m, err := manifest.Load("testdata/extra_field.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, m, day1.Add(time.Hour))
	ev := userCount("e1", day1, map[string]any{"software.update_channel": "beta"})
	submit(t, m, r.log, installation(1), "eu", day1, ev)
	// A record the validator would have refused, as if a bug let it into the
	// log: the forwarders still only take what is declared.
	bad := userCount("e2", day1, map[string]any{"os.build": "22631.3007", "tls.certificate": "MIIB", "whatever": "x"})
	submit(t, m, r.log, installation(2), "eu", day1, provision.Event{ID: "ok", Type: "license", Time: day1, Fields: map[string]any{"license.provider_site": "https://shop.example"}})
	r.log.Append(context.Background(), &provision.Submission{BatchID: "raw", InstallationID: installation(2), Region: "eu", ReceivedAt: day1, Events: []provision.Event{bad}})
	r.drain(t)

	gaReqs := r.ga.Accepted()
	if len(gaReqs) != 2 {
		t.Fatalf("google analytics got %d requests, want 2", len(gaReqs))
	}
	for _, req := range gaReqs {
		p := req.Events[0].Params
		if _, ok := p["software_update_channel"]; ok {
			t.Errorf("google analytics received software.update_channel, declared for third_party only: %v", p)
		}
		got := slices.Sorted(keys(p))
		want := []string{"os_update_packages_count", "os_update_packages_latest", "os_update_packages_sha256", "os_version", "software_name", "software_version"}
		if !slices.Equal(got, want) {
			t.Errorf("google analytics params = %v, want %v", got, want)
		}
	}
	tp := r.tp.Received()
	if len(tp) != 2 {
		t.Fatalf("third party got %d deliveries, want 2", len(tp))
	}
	byInst := map[string]map[string]any{}
	for _, d := range tp {
		byInst[d.Fields["installation.id"].(string)] = d.Fields
	}
	if byInst[installation(1)]["software.update_channel"] != "beta" {
		t.Errorf("third party did not get software.update_channel: %v", byInst[installation(1)])
	}
	for _, f := range byInst {
		for k := range f {
			if it := m.Item(k); it == nil || !it.ForRecipient(provision.RecipientThirdParty) {
				t.Errorf("third party received %s, not declared for it", k)
			}
		}
	}
	if v := r.ga.Violations(); len(v) > 0 {
		t.Errorf("GA rules broken: %v", v)
	}
}

func keys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestOncePerInstallationPerDay(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(49*time.Hour))
	for i := range 3 {
		at := day1.Add(time.Duration(i) * time.Hour)
		submit(t, m, r.log, installation(1), "eu", at, userCount("a", at, nil), userCount("b", at, nil),
			provision.Event{ID: "s", Type: "software", Time: at, Fields: map[string]any{"software.type": "vpn", "software.name": "S", "software.version": "1"}})
	}
	day2 := day1.Add(24 * time.Hour)
	submit(t, m, r.log, installation(1), "eu", day2, userCount("c", day2, nil))
	submit(t, m, r.log, installation(2), "br", day2, userCount("d", day2, nil))
	r.drain(t)
	r.drain(t) // a second pass over a read log sends nothing

	if got := len(r.ga.Accepted()); got != 3 {
		t.Errorf("google analytics got %d counts, want 3 (2 installations, installation 1 on 2 days)", got)
	}
	days := map[string]int{}
	for _, d := range r.tp.Received() {
		days[d.Day]++
	}
	if days["2026-11-26"] != 1 || days["2026-11-27"] != 2 || len(days) != 2 {
		t.Errorf("third party days = %v", days)
	}
	if r.tp.Duplicates() != 0 {
		t.Errorf("%d duplicate deliveries", r.tp.Duplicates())
	}
	if got := metricValue(t, r.reg, "provision_forward_sent_total", "third_party"); got != 3 {
		t.Errorf("sent metric = %v, want 3", got)
	}
	if lag := metricValue(t, r.reg, "provision_forward_lag_records", "google_analytics"); lag != 0 {
		t.Errorf("lag = %v after draining", lag)
	}
}

func TestSuppressedInstallationIsNeverForwarded(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(time.Hour))
	r.supp.Add(installation(1))
	submit(t, m, r.log, installation(1), "eu", day1, userCount("a", day1, nil))
	submit(t, m, r.log, installation(2), "eu", day1, userCount("b", day1, nil))
	// Installation 3 fails for the webhook and is dead-lettered; its
	// deletion is requested before the redrive.
	r.tp.Fail(503, -1, 0)
	submit(t, m, r.log, installation(3), "uk", day1, userCount("c", day1, nil))
	r.drain(t)
	r.tp.Recover()
	r.supp.Add(installation(3))
	if _, err := r.tpFwd.Redrive(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for _, req := range r.ga.Accepted() {
		if req.ClientID == installation(1) {
			t.Error("google analytics received a suppressed installation")
		}
	}
	for _, d := range r.tp.Received() {
		if id := d.Fields["installation.id"]; id == installation(1) || id == installation(3) {
			t.Errorf("third party received suppressed installation %v", id)
		}
	}
	if n, _ := r.state.CountDeadLetters(context.Background(), "third_party"); n != 0 {
		t.Errorf("%d dead letters left for a suppressed installation", n)
	}
}

func TestGA4ValueRules(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(time.Hour))
	var kbs []any
	for i := range 1500 {
		kbs = append(kbs, "KB"+strings.Repeat("9", 3)+string(rune('0'+i%10))+strings.Repeat("1", i%120))
	}
	kbs[len(kbs)-1] = "KB" + strings.Repeat("7", 120)
	submit(t, m, r.log, installation(1), "eu", day1, userCount("a", day1, map[string]any{"os.update_packages": kbs}))
	r.drain(t)
	if v := r.ga.Violations(); len(v) > 0 {
		t.Fatalf("GA rules broken: %v", v)
	}
	reqs := r.ga.Accepted()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	p := reqs[0].Events[0].Params
	if n, _ := p["os_update_packages_count"].(json.Number).Int64(); n != 1500 {
		t.Errorf("count = %v", p["os_update_packages_count"])
	}
	latest := p["os_update_packages_latest"].(string)
	want := kbs[len(kbs)-1].(string)
	if len(want) <= 100 {
		t.Fatalf("test value should be too long, is %d", len(want))
	}
	if len([]rune(latest)) != 100 || !strings.HasPrefix(want, latest[:83]) || latest[83] != '~' {
		t.Errorf("latest = %q: want the first 83 characters, ~ and a digest", latest)
	}
	if d := p["os_update_packages_sha256"].(string); len(d) != 64 {
		t.Errorf("digest = %q", d)
	}
	if reqs[0].ClientID != installation(1) {
		t.Errorf("client_id = %q, want the installation id as declared", reqs[0].ClientID)
	}
	if got := time.UnixMicro(reqs[0].TimestampMicros); !got.Equal(day1) {
		t.Errorf("timestamp = %v, want %v", got, day1)
	}
}

// The same list in another order gives the same digest.
func TestGA4ListDigestIgnoresOrder(t *testing.T) {
	g, err := forward.NewGA4(forward.GA4Config{MeasurementID: "G-1", APISecret: "s", Now: func() time.Time { return day1 }})
	if err != nil {
		t.Fatal(err)
	}
	body := func(l []any) map[string]any {
		b, err := g.Body(&forward.Count{Fields: map[string]any{"installation.id": installation(1), "os.update_packages": l}})
		if err != nil {
			t.Fatal(err)
		}
		var req struct {
			Events []forward.MPEvent
		}
		_ = json.Unmarshal(b, &req)
		return req.Events[0].Params
	}
	a, b := body([]any{"KB1", "KB2", "KB3"}), body([]any{"KB3", "KB1", "KB2"})
	if a["os_update_packages_sha256"] != b["os_update_packages_sha256"] {
		t.Error("digest depends on the order")
	}
	if a["os_update_packages_latest"] != "KB3" || b["os_update_packages_latest"] != "KB2" {
		t.Errorf("latest = %v, %v: want the last element as sent", a["os_update_packages_latest"], b["os_update_packages_latest"])
	}
}

func TestGA4RefusesWhatCannotFit(t *testing.T) {
	now := day1
	g, err := forward.NewGA4(forward.GA4Config{MeasurementID: "G-1", APISecret: "s", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	inst := installation(1)
	many := map[string]any{"installation.id": inst}
	for i := range 26 {
		many["p"+strings.Repeat("x", i)] = 1.0
	}
	long := map[string]any{"installation.id": inst, "a" + strings.Repeat("b", 40): "x"}
	cases := map[string]*forward.Count{
		"no installation id":      {Fields: map[string]any{"software.name": "S"}},
		"too old":                 {Time: now.Add(-72 * time.Hour), Fields: map[string]any{"installation.id": inst}},
		"more than 25 parameters": {Fields: many},
		"name over 40 characters": {Fields: long},
		"reserved prefix":         {Fields: map[string]any{"installation.id": inst, "google.x": "1"}},
		"nested value":            {Fields: map[string]any{"installation.id": inst, "software.name": map[string]any{}}},
	}
	for name, c := range cases {
		if _, err := g.Body(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := &forward.Count{Time: now.Add(time.Hour), Fields: map[string]any{"installation.id": inst}}
	b, err := g.Body(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"timestamp_micros":`+itoa(now.UnixMicro())) {
		t.Errorf("a future time is not clamped to now: %s", b)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestRetriesHonourRetryAfterThenSucceed(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(time.Hour))
	r.ga.Fail(503, 2, 1)
	r.tp.Fail(429, 2, 1)
	submit(t, m, r.log, installation(1), "eu", day1, userCount("a", day1, nil))
	r.drain(t)
	if len(r.ga.Accepted()) != 1 || len(r.tp.Received()) != 1 {
		t.Fatalf("delivered %d/%d, want 1/1", len(r.ga.Accepted()), len(r.tp.Received()))
	}
	for _, rc := range forward.Recipients {
		if got := metricValue(t, r.reg, "provision_forward_retried_total", rc); got != 2 {
			t.Errorf("%s retried = %v, want 2", rc, got)
		}
		if got := metricValue(t, r.reg, "provision_forward_last_success_timestamp_seconds", rc); got != float64(r.now.Unix()) {
			t.Errorf("%s last success = %v", rc, got)
		}
	}
}

// A recipient asking for a longer wait than max_wait is not called again
// in this round: the count is dead-lettered as retryable at once.
func TestRetryAfterBeyondMaxWaitDeadLettersForRedrive(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(time.Hour))
	r.tp.Fail(503, -1, 3600)
	submit(t, m, r.log, installation(1), "eu", day1, userCount("a", day1, nil))
	r.drain(t)
	if got := r.tp.Refused(); got != 1 {
		t.Errorf("%d attempts, want 1: the recipient asked for an hour", got)
	}
	dls, err := r.state.DeadLetters(context.Background(), "third_party", 10)
	if err != nil || len(dls) != 1 || !dls[0].Retryable || dls[0].Attempts != 1 {
		t.Fatalf("dead letters = %+v, %v", dls, err)
	}
}

func TestDeadLetterAfterBoundedAttemptsAndRedrive(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(time.Hour))
	r.tp.Fail(503, -1, 0)
	submit(t, m, r.log, installation(1), "eu", day1, userCount("a", day1, nil))
	submit(t, m, r.log, installation(2), "eu", day1, userCount("b", day1, nil))
	r.drain(t)
	if got := r.tp.Refused(); got != 6 {
		t.Errorf("%d attempts refused, want 2 counts × 3 attempts", got)
	}
	ctx := context.Background()
	st := r.tpFwd.Status(ctx)
	if st.DeadLetters != 2 || st.Healthy || st.Failed != 2 || st.Lag != 0 {
		t.Errorf("status = %+v", st)
	}
	if got := metricValue(t, r.reg, "provision_forward_dead_letters", "third_party"); got != 2 {
		t.Errorf("dead letter gauge = %v", got)
	}
	if got := metricValue(t, r.reg, "provision_forward_failed_total", "third_party"); got != 2 {
		t.Errorf("failed metric = %v", got)
	}
	dls, _ := r.state.DeadLetters(ctx, "third_party", 10)
	for _, dl := range dls {
		if !dl.Retryable || dl.Attempts != 3 || strings.Contains(dl.Reason, installation(1)) {
			t.Errorf("dead letter = %+v", dl)
		}
	}
	r.tp.Recover()
	n, err := r.tpFwd.Redrive(ctx, true)
	if err != nil || n != 2 {
		t.Fatalf("Redrive = %d, %v", n, err)
	}
	if len(r.tp.Received()) != 2 || r.tp.Duplicates() != 0 {
		t.Errorf("received %d, duplicates %d", len(r.tp.Received()), r.tp.Duplicates())
	}
	if st := r.tpFwd.Status(ctx); st.DeadLetters != 0 || !st.Healthy {
		t.Errorf("after redrive: %+v", st)
	}
	// Redriving again sends nothing more.
	if n, _ := r.tpFwd.Redrive(ctx, false); n != 0 {
		t.Errorf("second redrive delivered %d", n)
	}
}

func TestPermanentRefusalDeadLettersAtOnce(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(time.Hour))
	r.tp.Fail(400, 1, 0)
	submit(t, m, r.log, installation(1), "eu", day1, userCount("a", day1, nil))
	r.drain(t)
	if r.tp.Refused() != 1 {
		t.Errorf("a 400 was retried: %d attempts", r.tp.Refused())
	}
	ctx := context.Background()
	dls, _ := r.state.DeadLetters(ctx, "third_party", 10)
	if len(dls) != 1 || dls[0].Retryable {
		t.Fatalf("dead letters = %+v", dls)
	}
	if n, _ := r.tpFwd.Redrive(ctx, true); n != 0 {
		t.Error("an automatic redrive retried a permanent failure")
	}
	if n, _ := r.tpFwd.Redrive(ctx, false); n != 1 {
		t.Error("an explicit redrive did not deliver")
	}
}

// While the store is down the checkpoint stays; afterwards nothing is missed.
func TestStoreOutageKeepsCheckpoint(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(time.Hour))
	submit(t, m, r.log, installation(1), "eu", day1, userCount("a", day1, nil))
	r.log.SetFail(provision.ErrUnavailable)
	if _, err := r.gaFwd.Step(context.Background()); !errors.Is(err, provision.ErrUnavailable) {
		t.Fatalf("Step = %v, want ErrUnavailable", err)
	}
	if st := r.gaFwd.Status(context.Background()); st.Healthy {
		t.Error("status healthy while the store is down")
	}
	r.log.SetFail(nil)
	r.drain(t)
	if len(r.ga.Accepted()) != 1 {
		t.Errorf("%d delivered after the outage", len(r.ga.Accepted()))
	}
}

func TestRunStopsWithContext(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(time.Hour))
	submit(t, m, r.log, installation(1), "eu", day1, userCount("a", day1, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.gaFwd.Run(ctx) }()
	deadline := time.After(10 * time.Second)
	for len(r.ga.Accepted()) == 0 {
		select {
		case <-deadline:
			t.Fatal("nothing delivered by Run")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestGA4Check(t *testing.T) {
	srv := forwardtest.NewGA4Server(t, measurementID, apiSecret)
	client, err := forward.NewHTTPClient(forwardtest.CAFile(t, srv.Server), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	c := &forward.Count{Time: time.Now(), Fields: map[string]any{"installation.id": installation(1), "software.name": "S"}}
	for _, tc := range []struct {
		secret string
		want   int
	}{{apiSecret, 0}, {"wrong", 1}} {
		g, err := forward.NewGA4(forward.GA4Config{MeasurementID: measurementID, APISecret: tc.secret, Endpoint: srv.Endpoint(), Client: client})
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := g.Check(context.Background(), c)
		if err != nil || len(msgs) != tc.want {
			t.Errorf("secret %q: Check = %v, %v; want %d messages", tc.secret, msgs, err, tc.want)
		}
	}
	if len(srv.Accepted()) != 0 {
		t.Error("the validation endpoint recorded a hit")
	}
}

// An error never carries the api secret, which is in the URL.
func TestGA4ErrorsHideSecret(t *testing.T) {
	g, err := forward.NewGA4(forward.GA4Config{MeasurementID: "G-1", APISecret: "very-secret", Endpoint: "https://127.0.0.1:1/mp/collect"})
	if err != nil {
		t.Fatal(err)
	}
	err = g.Send(context.Background(), &forward.Count{Fields: map[string]any{"installation.id": installation(1)}})
	if !wire.IsRetryable(err) {
		t.Fatalf("connection refused is not retryable: %v", err)
	}
	if strings.Contains(err.Error(), "very-secret") {
		t.Errorf("error leaks the api secret: %v", err)
	}
}

func TestWebhookRejectsUntrustedCertificate(t *testing.T) {
	srv := forwardtest.NewReceiver(t, webhookSecret)
	w, err := forward.NewWebhook(forward.WebhookConfig{URL: srv.URL, Secret: webhookSecret}) // system roots only
	if err != nil {
		t.Fatal(err)
	}
	err = w.Send(context.Background(), &forward.Count{Day: "2026-11-26", Fields: map[string]any{}})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Send to an untrusted server = %v, want a certificate error", err)
	}
	if len(srv.Received()) != 0 {
		t.Error("delivered without verifying TLS")
	}
}

func TestSignature(t *testing.T) {
	now := time.Unix(1_790_000_000, 0)
	body := []byte(`{"delivery_id":"x"}`)
	h := forward.Sign(webhookSecret, now, body)
	if !strings.HasPrefix(h, "t=1790000000,v1=") || len(h) != len("t=1790000000,v1=")+64 {
		t.Fatalf("header = %q", h)
	}
	old := forward.Sign([]byte("an-older-secret-an-older-secret!"), now, body)
	cases := []struct {
		name   string
		header string
		body   []byte
		at     time.Time
		want   error
	}{
		{"valid", h, body, now, nil},
		{"within window", h, body, now.Add(4 * time.Minute), nil},
		{"rotation", h + "," + old[strings.Index(old, "v1="):], body, now, nil},
		{"tampered body", h, []byte(`{"delivery_id":"y"}`), now, forward.ErrSignatureMismatch},
		{"replayed later", h, body, now.Add(6 * time.Minute), forward.ErrSignatureExpired},
		{"from the future", h, body, now.Add(-6 * time.Minute), forward.ErrSignatureExpired},
		{"wrong secret", old, body, now, forward.ErrSignatureMismatch},
		{"empty", "", body, now, forward.ErrSignatureMalformed},
		{"no v1", "t=1790000000", body, now, forward.ErrSignatureMalformed},
		{"bad hex", "t=1790000000,v1=zz", body, now, forward.ErrSignatureMalformed},
		{"two t", "t=1,t=2," + h[strings.Index(h, "v1="):], body, now, forward.ErrSignatureMalformed},
		{"padded t", "t=01790000000," + h[strings.Index(h, "v1="):], body, now, forward.ErrSignatureMalformed},
		{"too long", h + strings.Repeat(",x=y", 300), body, now, forward.ErrSignatureMalformed},
	}
	for _, tc := range cases {
		if err := forward.VerifySignature(tc.header, tc.body, webhookSecret, tc.at, 5*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// The receiver in the tests enforces its replay window: a delivery signed
// too long ago is refused.
func TestReceiverRefusesReplay(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(time.Hour))
	r.tp.Now = func() time.Time { return r.now.Add(10 * time.Minute) }
	submit(t, m, r.log, installation(1), "eu", day1, userCount("a", day1, nil))
	r.drain(t)
	if len(r.tp.Received()) != 0 || len(r.tp.Rejected()) != 1 || !strings.Contains(r.tp.Rejected()[0], "replay") {
		t.Errorf("received %d, rejected %v", len(r.tp.Received()), r.tp.Rejected())
	}
}

func TestConfig(t *testing.T) {
	good := `
google_analytics:
  measurement_id: G-ABC
  api_secret_env: GA_SECRET
  endpoint: region1
third_party:
  url: https://counts.example.net/hook
  secret_file: /etc/provision/webhook.secret
retry: {max_attempts: 5, initial_backoff: 2s, max_backoff: 1m}
poll_interval: 5s
`
	c, err := forward.ParseConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Retry.InitialBackoff != 2*time.Second || c.GoogleAnalytics.Endpoint != "region1" {
		t.Errorf("config = %+v", c)
	}
	bad := map[string]string{
		"unknown key":         "google_analytic: {}\n",
		"no measurement id":   "google_analytics: {api_secret_env: X}\n",
		"two secrets":         "google_analytics: {measurement_id: G, api_secret_env: X, api_secret_file: f}\n",
		"http endpoint":       "google_analytics: {measurement_id: G, api_secret_env: X, endpoint: 'http://x/mp/collect'}\n",
		"http webhook":        "third_party: {url: 'http://x', secret_env: S}\n",
		"no webhook secret":   "third_party: {url: 'https://x'}\n",
		"negative attempts":   "retry: {max_attempts: -1}\n",
		"negative duration":   "poll_interval: -1s\n",
		"huge batch":          "batch_size: 1000000\n",
		"not a mapping":       "- 1\n",
		"bad duration":        "poll_interval: soon\n",
		"inline secret field": "google_analytics: {measurement_id: G, api_secret: x}\n",
	}
	for name, doc := range bad {
		if _, err := forward.ParseConfig([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	senders, err := c.Senders(func(k string) string {
		if k == "GA_SECRET" {
			return "s3cret"
		}
		return ""
	})
	if err == nil {
		t.Errorf("Senders with a missing secret file = %v, want an error", senders)
	}
}

func TestFieldTable(t *testing.T) {
	m, err := manifest.Load("testdata/extra_field.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := forward.WriteFieldTable(&b, m, forward.FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| `installation.id` | `client_id` | `fields.installation.id` |",
		"| `os.update_packages` | `os_update_packages_count`, `os_update_packages_latest`, `os_update_packages_sha256` | `fields.os.update_packages` |",
		"| `software.update_channel` | — | `fields.software.update_channel` |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "os.build") || strings.Contains(out, "software.type") {
		t.Errorf("table lists an item no forwarding recipient may receive:\n%s", out)
	}
	for _, f := range []string{forward.FormatText, forward.FormatJSON} {
		if err := forward.WriteFieldTable(&b, m, f); err != nil {
			t.Error(err)
		}
	}
	if forward.WriteFieldTable(&b, m, "xml") == nil {
		t.Error("unknown format accepted")
	}
}

func TestNewRequiresSuppressor(t *testing.T) {
	_, err := forward.New(forward.Options{Manifest: manifest.Reference(), Log: memlog.New(), Checkpoints: memlog.New(),
		State: forwardtest.NewState(), Sender: nil})
	if err == nil || !strings.Contains(err.Error(), "Suppressor") {
		t.Errorf("New without a suppressor = %v", err)
	}
}

// A forwarder stopped in the middle of a retry resumes at the first record
// it had not handled; nothing is lost and nothing sent twice.
func TestResumesWhereItStopped(t *testing.T) {
	m := manifest.Reference()
	r := newRig(t, m, day1.Add(time.Hour))
	for i := 1; i <= 5; i++ {
		submit(t, m, r.log, installation(i), "eu", day1, userCount("a", day1, nil))
	}
	// The third count meets an outage; the forwarder is stopped while it waits.
	ctx, cancel := context.WithCancel(context.Background())
	sender := &cancelAfter{Sender: r.tpSender(t), n: 3, cancel: cancel}
	f := r.forwarder(t, sender)
	if _, err := f.Step(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Step = %v, want context.Canceled", err)
	}
	if cp, _ := r.log.Checkpoint(context.Background(), f.Name()); cp != 2 {
		t.Fatalf("checkpoint = %d after 2 delivered, want 2", cp)
	}
	// A new forwarder (a restart) picks up from there.
	r.drain(t)
	got := map[string]int{}
	for _, d := range r.tp.Received() {
		got[d.Fields["installation.id"].(string)]++
	}
	if len(got) != 5 || r.tp.Duplicates() != 0 {
		t.Errorf("received %v, %d duplicates", got, r.tp.Duplicates())
	}
}

// cancelAfter cancels the context when its n-th send starts and fails that
// send as an outage would.
type cancelAfter struct {
	forward.Sender
	n      int
	calls  int
	cancel func()
}

func (c *cancelAfter) Send(ctx context.Context, cnt *forward.Count) error {
	c.calls++
	if c.calls == c.n {
		c.cancel()
		return wire.Errorf(503, wire.CodeUnavailable, "down")
	}
	return c.Sender.Send(ctx, cnt)
}

// An item not declared for the installation's region is not forwarded there.
func TestRegionRespected(t *testing.T) {
	m, err := manifest.Load("testdata/extra_field.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, m, day1.Add(time.Hour))
	submit(t, m, r.log, installation(1), "eu", day1, userCount("a", day1, map[string]any{"software.update_channel": "beta"}))
	// The validator refuses the item for us-ca; append as if a bug let it in.
	ev := userCount("b", day1, map[string]any{"software.update_channel": "beta"})
	_, _, _ = r.log.Append(context.Background(), &provision.Submission{BatchID: "ca", InstallationID: installation(2), Region: "us-ca", ReceivedAt: day1, Events: []provision.Event{ev}})
	r.drain(t)
	got := map[string]any{}
	for _, d := range r.tp.Received() {
		got[d.Fields["installation.id"].(string)] = d.Fields["software.update_channel"]
	}
	if len(got) != 2 || got[installation(1)] != "beta" || got[installation(2)] != nil {
		t.Errorf("software.update_channel by installation = %v; want it for eu only", got)
	}
}

// The GA-rules server is a real check: each documented rule, broken, is
// recorded; a request that keeps them all is accepted.
func TestGA4ServerEnforcesRules(t *testing.T) {
	srv := forwardtest.NewGA4Server(t, measurementID, apiSecret)
	client, err := forward.NewHTTPClient(forwardtest.CAFile(t, srv.Server), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	ev := func(name string, params map[string]any) forward.MPEvent {
		return forward.MPEvent{Name: name, Params: params}
	}
	manyEvents := make([]forward.MPEvent, 26)
	for i := range manyEvents {
		manyEvents[i] = ev("user_count", nil)
	}
	manyParams := map[string]any{}
	for i := range 26 {
		manyParams[fmt.Sprintf("p%d", i)] = 1
	}
	manyProps := map[string]forward.MPUserProperty{}
	for i := range 26 {
		manyProps[fmt.Sprintf("u%d", i)] = forward.MPUserProperty{Value: "x"}
	}
	ok := forward.MPRequest{ClientID: "c", Events: []forward.MPEvent{ev("user_count", map[string]any{"a": "x"})}}
	cases := map[string]forward.MPRequest{
		"no client_id":          {Events: ok.Events},
		"26 events":             {ClientID: "c", Events: manyEvents},
		"no events":             {ClientID: "c"},
		"reserved event":        {ClientID: "c", Events: []forward.MPEvent{ev("session_start", nil)}},
		"event name 41":         {ClientID: "c", Events: []forward.MPEvent{ev("e"+strings.Repeat("x", 40), nil)}},
		"event name digit":      {ClientID: "c", Events: []forward.MPEvent{ev("1event", nil)}},
		"26 params":             {ClientID: "c", Events: []forward.MPEvent{ev("e", manyParams)}},
		"param name 41":         {ClientID: "c", Events: []forward.MPEvent{ev("e", map[string]any{"p" + strings.Repeat("x", 40): 1})}},
		"param name dash":       {ClientID: "c", Events: []forward.MPEvent{ev("e", map[string]any{"a-b": 1})}},
		"reserved param prefix": {ClientID: "c", Events: []forward.MPEvent{ev("e", map[string]any{"ga_x": 1})}},
		"reserved param":        {ClientID: "c", Events: []forward.MPEvent{ev("e", map[string]any{"session_id": 1})}},
		"value 101":             {ClientID: "c", Events: []forward.MPEvent{ev("e", map[string]any{"a": strings.Repeat("x", 101)})}},
		"nested value":          {ClientID: "c", Events: []forward.MPEvent{ev("e", map[string]any{"a": []any{1}})}},
		"26 user properties":    {ClientID: "c", Events: ok.Events, UserProperties: manyProps},
		"user prop name 25":     {ClientID: "c", Events: ok.Events, UserProperties: map[string]forward.MPUserProperty{"u" + strings.Repeat("x", 24): {Value: "x"}}},
		"user prop value 37":    {ClientID: "c", Events: ok.Events, UserProperties: map[string]forward.MPUserProperty{"u": {Value: strings.Repeat("x", 37)}}},
		"reserved user prop":    {ClientID: "c", Events: ok.Events, UserProperties: map[string]forward.MPUserProperty{"user_id": {Value: "x"}}},
		"73 hours old":          {ClientID: "c", Events: ok.Events, TimestampMicros: time.Now().Add(-73 * time.Hour).UnixMicro()},
		"body 130 kB":           {ClientID: strings.Repeat("c", forward.GA4MaxBodyBytes), Events: ok.Events},
	}
	post := func(req forward.MPRequest) {
		body, _ := json.Marshal(req)
		resp, err := client.Post(srv.Endpoint()+"?measurement_id="+measurementID+"&api_secret="+apiSecret, "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("status %d: the collection endpoint answers 2xx even to bad hits", resp.StatusCode)
		}
	}
	for name, req := range cases {
		before := len(srv.Violations())
		post(req)
		if len(srv.Violations()) == before {
			t.Errorf("%s: not recorded as a violation", name)
		}
	}
	before := len(srv.Violations())
	post(ok)
	if len(srv.Violations()) != before || len(srv.Accepted()) != 1 {
		t.Errorf("a valid request was refused: %v", srv.Violations()[before:])
	}
}
