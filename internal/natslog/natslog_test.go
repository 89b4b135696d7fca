package natslog_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func submission(batch string, eventIDs ...string) *provision.Submission {
	s := &provision.Submission{
		BatchID: batch, InstallationID: "inst", Region: "eu", ManifestVersion: "1",
		ReceivedAt: t0, Response: []byte(fmt.Sprintf(`{"batch_id":%q,"accepted":%d}`, batch, len(eventIDs))),
	}
	for _, id := range eventIDs {
		s.Events = append(s.Events, provision.Event{ID: id, Type: "os", Time: t0, Fields: map[string]any{"os.name": "linux", "location.country": "FR"}})
	}
	return s
}

func openB(b *testing.B) *natslog.Log {
	l, err := natslog.Open(context.Background(), natstest.Config(b, natstest.URL(b)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	return l
}

func open(t *testing.T, cfg natslog.Config) *natslog.Log {
	t.Helper()
	l, err := natslog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestAppendResendGetsTheFirstAnswer(t *testing.T) {
	t.Parallel()
	l := open(t, natstest.Config(t, natstest.URL(t)))
	ctx := context.Background()
	first := submission("b1", "e1", "e2")
	resp, dup, err := l.Append(ctx, first)
	if err != nil || dup || string(resp) != string(first.Response) {
		t.Fatalf("append = %q %v %v", resp, dup, err)
	}
	resend := submission("b1", "e1", "e2")
	resend.Response = []byte(`{"different":true}`)
	resp, dup, err = l.Append(ctx, resend)
	if err != nil || !dup || string(resp) != string(first.Response) {
		t.Fatalf("resend = %q %v %v; want the first answer", resp, dup, err)
	}
	recs, err := l.Read(ctx, 0, 100)
	if err != nil || len(recs) != 2 {
		t.Fatalf("read = %d records, %v", len(recs), err)
	}
	// Batch ids are scoped to their installation: the same id from
	// another installation is another batch, answered with its own answer.
	other := submission("b1", "e1")
	other.InstallationID = "another"
	resp, dup, err = l.Append(ctx, other)
	if err != nil || dup || string(resp) != string(other.Response) {
		t.Fatalf("other installation = %q %v %v; want its own answer", resp, dup, err)
	}
	if recs, err := l.Read(ctx, 0, 100); err != nil || len(recs) != 3 {
		t.Fatalf("read = %d records, %v; want 3", len(recs), err)
	}
}

func TestReadAndHead(t *testing.T) {
	t.Parallel()
	l := open(t, natstest.Config(t, natstest.URL(t)))
	ctx := context.Background()
	if h, err := l.Head(ctx); err != nil || h != 0 {
		t.Fatalf("empty head = %d %v", h, err)
	}
	for i, ids := range [][]string{{"a", "b"}, {}, {"c"}, {"d", "e", "f"}, {}} {
		if _, _, err := l.Append(ctx, submission(fmt.Sprint("b", i), ids...)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var after int64
	for {
		recs, err := l.Read(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Seq <= after {
				t.Fatalf("seq %d after %d", r.Seq, after)
			}
			after = r.Seq
			got = append(got, r.Event.ID)
			if r.Country != "FR" || r.BatchID == "" || !r.ReceivedAt.Equal(t0) || r.Event.Fields["os.name"] != "linux" {
				t.Fatalf("record does not round-trip: %+v", r)
			}
		}
	}
	if fmt.Sprint(got) != "[a b c d e f]" {
		t.Fatalf("read %v", got)
	}
	head, err := l.Head(ctx)
	if err != nil || head != after {
		t.Fatalf("head = %d %v, want %d", head, err, after)
	}
}

// answers are keyed by installation id and batch id, joined by a slash.
type answers map[string][]byte

func (a answers) LookupResponse(_ context.Context, installationID, batchID string) ([]byte, error) {
	if r, ok := a[installationID+"/"+batchID]; ok {
		return r, nil
	}
	return nil, provision.ErrNotFound
}

// After the duplicate window the store that workers wrote to answers.
func TestResendAfterWindowIsAnsweredFromTheStore(t *testing.T) {
	t.Parallel()
	cfg := natstest.Config(t, natstest.URL(t))
	cfg.Responses = answers{"inst/old": []byte(`{"stored":true}`), "another/mine": []byte(`{"not":"yours"}`)}
	l := open(t, cfg)
	resp, dup, err := l.Append(context.Background(), submission("old", "x"))
	if err != nil || !dup || string(resp) != `{"stored":true}` {
		t.Fatalf("append = %q %v %v", resp, dup, err)
	}
	if recs, _ := l.Read(context.Background(), 0, 10); len(recs) != 0 {
		t.Fatalf("a known batch was published again: %d records", len(recs))
	}
	// The same batch id stored for another installation is not this one's.
	mine := submission("mine", "y")
	resp, dup, err = l.Append(context.Background(), mine)
	if err != nil || dup || string(resp) != string(mine.Response) {
		t.Fatalf("append = %q %v %v; want its own answer", resp, dup, err)
	}
}

// With JetStream gone, Append answers ErrUnavailable within its timeout, and
// callers beyond MaxInFlight are turned away at once instead of queueing.
func TestUnavailableWhenJetStreamIsDown(t *testing.T) {
	t.Parallel()
	srv := natstest.Single(t)
	cfg := natstest.Config(t, srv.URL())
	cfg.MaxInFlight = 1
	cfg.SlotWait = 20 * time.Millisecond
	cfg.PublishTimeout = time.Second
	l := open(t, cfg)
	ctx := context.Background()
	if _, _, err := l.Append(ctx, submission("before", "e0")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(1)
	go func() { defer wg.Done(); _, _, errs[0] = l.Append(ctx, submission("slow", "e1")) }()
	time.Sleep(200 * time.Millisecond) // the first holds the only slot
	_, _, errs[1] = l.Append(ctx, submission("turned-away", "e2"))
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, provision.ErrUnavailable) {
			t.Errorf("append %d: %v, want ErrUnavailable", i, err)
		}
	}

	srv.Start(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, err := l.Append(ctx, submission("after", "e3"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestConsumerDeadLettersMalformedMessages(t *testing.T) {
	t.Parallel()
	url := natstest.URL(t)
	cfg := natstest.Config(t, url)
	l := open(t, cfg)
	ctx := context.Background()
	if _, _, err := l.Append(ctx, submission("good", "g1")); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := nc.JetStream()
	if _, err := js.Publish(cfg.Subject, []byte("not zstd")); err != nil {
		t.Fatal(err)
	}
	c, err := l.Consumer(ctx, natslog.DefaultConsumerConfig("store"))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := c.Fetch(ctx, 10, 2*time.Second)
	if err != nil || len(ds) != 2 {
		t.Fatalf("fetch = %d, %v", len(ds), err)
	}
	if ds[0].Err != nil || ds[0].Submission.BatchID != "good" || ds[0].Attempt != 1 {
		t.Fatalf("first delivery: %+v", ds[0])
	}
	if !errors.Is(ds[1].Err, natslog.ErrMalformed) {
		t.Fatalf("second delivery: %v", ds[1].Err)
	}
	if err := ds[0].Ack(); err != nil {
		t.Fatal(err)
	}
	if err := ds[1].DeadLetter(ctx, ds[1].Err); err != nil {
		t.Fatal(err)
	}
	dead, err := js.GetLastMsg(cfg.DeadStream, cfg.DeadSubject)
	if err != nil {
		t.Fatal(err)
	}
	if string(dead.Data) != "not zstd" || dead.Header.Get("Provision-Stream-Seq") != "2" || dead.Header.Get("Provision-Reason") == "" {
		t.Fatalf("dead letter: %q %v", dead.Data, dead.Header)
	}
	// Nothing is delivered again.
	if ds, err := c.Fetch(ctx, 10, 500*time.Millisecond); err != nil || len(ds) != 0 {
		t.Fatalf("redelivered %d, %v", len(ds), err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*natslog.Config)
		want string
	}{
		{"no url", func(c *natslog.Config) { c.URL = "" }, "nats.url"},
		{"replicas", func(c *natslog.Config) { c.Replicas = 0 }, "nats.replicas"},
		{"max age", func(c *natslog.Config) { c.MaxAge = time.Second }, "nats.max_age"},
		{"in flight", func(c *natslog.Config) { c.MaxInFlight = 0 }, "nats.max_in_flight"},
		{"publish timeout", func(c *natslog.Config) { c.PublishTimeout = 0 }, "nats.publish_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := natslog.DefaultConfig("nats://127.0.0.1:4222")
			tc.edit(&c)
			if err := c.Validate(); err == nil || !contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %s", err, tc.want)
			}
		})
	}
	if err := natslog.DefaultConsumerConfig("").Validate(); err == nil {
		t.Fatal("consumer without a name accepted")
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestRejectsBatchIDsThatCannotBeHeaders(t *testing.T) {
	t.Parallel()
	l := open(t, natstest.Config(t, natstest.URL(t)))
	for _, id := range []string{"", "a\r\nNats-Expected-Stream: x", string(make([]byte, 300))} {
		if _, _, err := l.Append(context.Background(), submission(id, "e")); err == nil || errors.Is(err, provision.ErrUnavailable) {
			t.Errorf("batch id %q: %v", id, err)
		}
	}
}

func TestRefusesSubmissionsBeyondMaxPayload(t *testing.T) {
	t.Parallel()
	srv := natstest.Single(t, func(o *server.Options) { o.MaxPayload = 4096 })
	l := open(t, natstest.Config(t, srv.URL()))
	sub := submission("big", "e")
	noise := make([]byte, 8192)
	_, _ = rand.Read(noise)
	sub.Events[0].Fields["os.name"] = hex.EncodeToString(noise)
	_, _, err := l.Append(context.Background(), sub)
	if err == nil || errors.Is(err, provision.ErrUnavailable) || !contains(err.Error(), "max_payload is 4096") {
		t.Fatalf("append of an oversized submission: %v", err)
	}
	if _, _, err := l.Append(context.Background(), submission("small", "e")); err != nil {
		t.Fatal(err)
	}
}
