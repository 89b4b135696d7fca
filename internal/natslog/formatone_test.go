package natslog_test

import (
	"context"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"

	"github.com/provisionhq/provision/internal/natslog/natstest"
)

// A format 1 message of an earlier server names a location for the whole
// batch. It is read and ignored: each record's location is its event's,
// so an event type that does not declare the location has none.
func TestFormatOneBatchLocationIsIgnored(t *testing.T) {
	t.Parallel()
	url := natstest.URL(t)
	cfg := natstest.Config(t, url)
	l := open(t, cfg)
	raw := []byte(`{"v":1,"batch_id":"old","installation_id":"inst","region":"eu","manifest_version":"1",
		"country":"DE","subdivision":"BY","received_at":"2026-11-29T10:00:00Z","response":"e30=","events":[
		{"id":"e1","type":"os","time":"2026-11-29T10:00:00Z","fields":{"os.name":"linux","location.country":"DE","location.subdivision":"BY"}},
		{"id":"e2","type":"user_count","time":"2026-11-29T10:00:00Z","fields":{"os.name":"linux"}}]}`)
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	body := enc.EncodeAll(raw, nil)
	enc.Close()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(cfg.Subject, body); err != nil {
		t.Fatal(err)
	}
	recs, err := l.Read(context.Background(), 0, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("read = %d records, %v; want 2", len(recs), err)
	}
	if recs[0].Country != "DE" || recs[0].Subdivision != "BY" {
		t.Errorf("os record location = %q %q, want DE BY", recs[0].Country, recs[0].Subdivision)
	}
	if recs[1].Country != "" || recs[1].Subdivision != "" {
		t.Errorf("user_count record location = %q %q, want none", recs[1].Country, recs[1].Subdivision)
	}
}
