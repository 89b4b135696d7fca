package main

import (
	"context"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
)

// An ingest node in the scale-out mode appends to JetStream and answers a
// resend that JetStream no longer remembers from PostgreSQL.
func TestScaleOutLogAnswersLateResendsFromTheStore(t *testing.T) {
	lc := natstest.Config(t, natstest.URL(t))
	pc := pgtest.Config(t)
	ctx := context.Background()
	so := &scaleOutFlags{log: lc.URL, store: pc.URL, schema: pc.Schema, stream: lc.Stream, subject: lc.Subject,
		replicas: 1, dupWindow: time.Minute, maxAge: time.Hour, maxConns: 2, applicationTag: pc.ApplicationName}
	s, err := so.openScaleOutLog(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	sub := func(id, resp string) *provision.Submission {
		return &provision.Submission{BatchID: id, InstallationID: "i", Region: "eu", ReceivedAt: now, Response: []byte(resp),
			Events: []provision.Event{{ID: id + "/0", Type: "os", Time: now, Fields: map[string]any{"os.name": "linux"}}}}
	}
	if _, dup, err := s.Log.Append(ctx, sub("fresh", `{"n":1}`)); err != nil || dup {
		t.Fatalf("first append: %v %v", dup, err)
	}
	// Stored by a worker long ago, outside JetStream's window.
	if _, err := s.Store.Write(ctx, []*provision.Submission{sub("old", `{"old":true}`)}); err != nil {
		t.Fatal(err)
	}
	resp, dup, err := s.Log.Append(ctx, sub("old", `{"new":true}`))
	if err != nil || !dup || string(resp) != `{"old":true}` {
		t.Fatalf("late resend = %s %v %v", resp, dup, err)
	}
	s.Close()
	s.Close()
}
