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
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/worker"
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
		if o.Owner == "jetstream:"+lc.Stream && (o.Status != privacy.OutcomeErased || o.Removed != 2) {
			t.Errorf("stream outcome = %+v, want 2 messages erased", o)
		}
		if o.Owner == "jetstream:"+lc.DeadStream && (o.Status != privacy.OutcomeErased || o.Removed != 1) {
			t.Errorf("dead-letter stream outcome = %+v, want 1 message erased", o)
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

// With a worker, erasure deletes exactly the messages the worker recorded
// for the installation, by sequence (the tail after the acknowledgement
// floor is empty), and forgets their records; a message of the installation
// that reaches the worker after the erasure is refused by the tombstone
// and deleted from the stream by the worker.
func TestErasureDeletesTheRecordedMessages(t *testing.T) {
	ctx := context.Background()
	pc := pgtest.Config(t)
	lc := natstest.Config(t, natstest.URL(t))
	b, err := Open(ctx, Options{Store: pc.URL, Schema: pc.Schema, MaxConns: 4, Log: lc.URL, NATS: lc})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cons, err := b.NATS.Consumer(ctx, natslog.DefaultConsumerConfig("store"))
	if err != nil {
		t.Fatal(err)
	}
	wc := worker.DefaultConfig()
	wc.FetchWait = 50 * time.Millisecond
	w, err := worker.New(cons, b.Postgres, wc)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waited 15s for %s", what)
			}
		}
	}
	const gone, stays = "7c1f3a52-9d0e-4b8a-a1c2-3e4f5a6b7c8d", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	now := time.Now().UTC()
	appendSub := func(i int, id string) {
		t.Helper()
		sub := &provision.Submission{BatchID: fmt.Sprintf("b%d", i), InstallationID: id, Region: "eu", ReceivedAt: now, Response: []byte(`{}`),
			Events: []provision.Event{{ID: fmt.Sprintf("e%d", i), Type: "software", Time: now, Fields: map[string]any{"software.name": "n"}}}}
		if _, _, err := b.Log.Append(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range []string{gone, stays, gone, stays} {
		appendSub(i, id)
	}
	wait("the worker", func() bool { return w.Stats().Messages == 4 })
	seqs, err := b.Postgres.StreamMessages(ctx, privacy.IDHash(gone))
	if err != nil || len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 3 {
		t.Fatalf("recorded messages of the installation = %v %v, want [1 3]", seqs, err)
	}
	wait("the acknowledgement floor", func() bool { return ackFloor(t, lc) == 4 })

	svc, _, err := b.PrivacyService(referenceManifest(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := svc.Erase(ctx, gone, "js-seq", privacy.SourceOperator)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range rec.Removed.Owners {
		if o.Owner == "jetstream:"+lc.Stream && o.Removed != 2 {
			t.Errorf("stream outcome = %+v, want 2 messages", o)
		}
	}
	if left := messagesLeft(t, lc); len(left) != 2 || left[0] != 2 || left[1] != 4 {
		t.Errorf("messages left = %v, want [2 4]", left)
	}
	if seqs, err := b.Postgres.StreamMessages(ctx, privacy.IDHash(gone)); err != nil || len(seqs) != 0 {
		t.Errorf("records left of the erased installation = %v %v", seqs, err)
	}

	// A late message of the erased installation.
	appendSub(5, gone)
	wait("the worker to delete the late message", func() bool { return w.Stats().Erased == 1 })
	if left := messagesLeft(t, lc); len(left) != 2 {
		t.Errorf("messages left after the late one = %v, want [2 4]", left)
	}
	if seqs, err := b.Postgres.StreamMessages(ctx, privacy.IDHash(gone)); err != nil || len(seqs) != 0 {
		t.Errorf("records left of the erased installation = %v %v", seqs, err)
	}
}

// ackFloor is the acknowledgement floor of the "store" consumer.
func ackFloor(t *testing.T, lc natslog.Config) uint64 {
	t.Helper()
	nc, err := nats.Connect(lc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	c, err := js.Consumer(context.Background(), lc.Stream, "store")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.AckFloor.Stream
}

// messagesLeft lists the sequences of the messages a stream holds.
func messagesLeft(t *testing.T, lc natslog.Config) []uint64 {
	t.Helper()
	nc, err := nats.Connect(lc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(context.Background(), lc.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		if _, err := s.GetMsg(context.Background(), seq); err == nil {
			out = append(out, seq)
		}
	}
	return out
}
