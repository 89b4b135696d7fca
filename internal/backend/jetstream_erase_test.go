package backend

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/privacy"
)

// After an erasure, no message of the JetStream streams holds the
// installation: reading every message, raw and decoded, finds neither its
// id nor its canary, while another installation's message stays.
func TestErasureRemovesTheStreamsMessages(t *testing.T) {
	ctx := context.Background()
	pc := pgtest.Config(t)
	lc := natstest.Config(t, natstest.URL(t))
	b, err := Open(ctx, Options{Store: pc.URL, Schema: pc.Schema, MaxConns: 2, Log: lc.URL, NATS: lc})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const gone, stays, canary = "7c1f3a52-9d0e-4b8a-a1c2-3e4f5a6b7c8d", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "canary-jetstream-6h"
	now := time.Now().UTC()
	for i, id := range []string{gone, stays, gone} {
		sub := &provision.Submission{BatchID: fmt.Sprintf("b%d", i), InstallationID: id, Region: "eu", ReceivedAt: now, Response: []byte(`{}`),
			Events: []provision.Event{{ID: fmt.Sprintf("e%d", i), Type: "software", Time: now, Fields: map[string]any{"software.name": canary + id[:4]}}}}
		if _, _, err := b.Log.Append(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	// A dead letter of the installation, as a worker would leave it.
	nc, err := nats.Connect(lc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(ctx, lc.DeadSubject, []byte(`{"installation_id":"`+gone+`","x":"`+canary+`"}`)); err != nil {
		t.Fatal(err)
	}

	svc, _, err := b.PrivacyService(referenceManifest(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := svc.Erase(ctx, gone, "js-1", privacy.SourceOperator)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range rec.Removed.Owners {
		if o.Owner == "jetstream:"+lc.Stream && (o.Status != privacy.OutcomeErased || o.Removed != 3) {
			t.Errorf("stream outcome = %+v, want 3 messages erased", o)
		}
	}
	kept := 0
	for _, name := range []string{lc.Stream, lc.DeadStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := s.Info(ctx)
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			if bytes.Contains(m.Data, []byte(gone)) || bytes.Contains(m.Data, []byte(canary+gone[:4])) {
				t.Errorf("%s message %d still holds the erased installation", name, seq)
			}
			kept++
		}
	}
	recs, err := b.NATS.Read(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.InstallationID == gone {
			t.Errorf("record %d of the erased installation is still readable", r.Seq)
		}
	}
	if kept != 1 || len(recs) != 1 {
		t.Errorf("kept %d messages and %d records, want the other installation's one", kept, len(recs))
	}
}
