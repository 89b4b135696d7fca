package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sent_at is read from the device's clock when each attempt is made, not
// when the batch was cut: a batch that waited three days in flight says
// so, and the server can tell a backlog from a wrong clock. The resend is
// the same batch: its id and its events' bytes do not change.
func TestSentAtIsStampedAtEachAttempt(t *testing.T) {
	clock := &testClock{t: time.Now().Add(-3 * 24 * time.Hour).Truncate(time.Second)}
	a := openAgent(t, t.TempDir(), func(c *Config) { c.Now = clock.now })
	ctx := context.Background()
	if _, err := a.Accept("eu"); err != nil {
		t.Fatal(err)
	}
	if err := a.RecordTask(ctx, Task{Type: TaskInstall, Status: TaskSuccess, Duration: time.Minute}); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t)
	var sl sleeps
	up := upload(t, srv, &sl)
	up.MaxAttempts = 1
	srv.FailWith(http.StatusServiceUnavailable, wire.CodeUnavailable)
	if _, err := a.Flush(ctx, up); err == nil {
		t.Fatal("the flush to a failing server succeeded")
	}
	st, err := a.Status()
	if err != nil || !st.Inflight {
		t.Fatalf("no batch in flight after the failure: %+v %v", st, err)
	}
	cut, err := a.store.GetInflight()
	if err != nil {
		t.Fatal(err)
	}

	clock.advance(3 * 24 * time.Hour)
	srv.FailWith(0, "")
	if rep, err := a.Flush(ctx, up); err != nil || rep.Accepted != 1 {
		t.Fatalf("flush: %+v, %v", rep, err)
	}
	sent, err := a.Sent(1)
	if err != nil || len(sent) != 1 {
		t.Fatalf("sent log %v, %v", sent, err)
	}
	var body, cutBody struct {
		ID     string          `json:"batch_id"`
		SentAt time.Time       `json:"sent_at"`
		Events json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(sent[0].Batch, &body); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(cut.Body, &cutBody); err != nil {
		t.Fatal(err)
	}
	if !body.SentAt.Equal(clock.now()) {
		t.Errorf("sent_at = %s, want the clock at the attempt, %s (the batch was cut at %s)", body.SentAt, clock.now(), cutBody.SentAt)
	}
	if body.ID != cut.BatchID || !bytes.Equal(body.Events, cutBody.Events) {
		t.Errorf("the resend is not the batch cut: id %s/%s, events\n%s\n%s", body.ID, cut.BatchID, body.Events, cutBody.Events)
	}
	if got := srv.Batches(); len(got) != 1 || got[0].ID != cut.BatchID {
		t.Errorf("server holds %+v", got)
	}
}

func TestWithSentAtKeepsTheEnvelope(t *testing.T) {
	body := []byte(`{"batch_id":"b","installation_id":"i","region":"eu","manifest_version":"v","sent_at":"2026-01-02T03:04:05Z","events":[{"id":"e","type":"task","time":"2026-01-02T03:00:00Z","fields":{"a":"<&>"}}]}`)
	got, err := withSentAt(body, time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Replace(body, []byte("2026-01-02T03:04:05Z"), []byte("2026-12-01T10:00:00.123Z"), 1)
	// encoding/json escapes <, & and > as the agent's own marshalling did.
	want = bytes.Replace(want, []byte(`"<&>"`), []byte(`"\u003c\u0026\u003e"`), 1)
	if !bytes.Equal(got, want) {
		t.Errorf("withSentAt =\n%s\nwant\n%s", got, want)
	}
	if _, err := withSentAt([]byte("not json"), time.Now()); err == nil {
		t.Error("withSentAt of a broken body: no error")
	}
}
