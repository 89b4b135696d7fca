package main

import (
	"context"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
)

// Each backend `provision serve` can append to takes a submission, answers
// its resend with the first answer, and closes twice without error.
func TestServeBackends(t *testing.T) {
	lc := natstest.Config(t, natstest.URL(t))
	pc := pgtest.Config(t)
	for _, tc := range []struct {
		name string
		so   scaleOutFlags
		lag  bool // the lag metric can compare the log with checkpoints
	}{
		{"embedded", scaleOutFlags{}, true},
		{"postgres", scaleOutFlags{store: pc.URL, schema: pc.Schema, maxConns: 2}, true},
		{"jetstream", scaleOutFlags{log: lc.URL, store: pc.URL, schema: pc.Schema, stream: lc.Stream, subject: lc.Subject,
			replicas: 1, dupWindow: time.Minute, maxAge: time.Hour, maxConns: 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tc.so.applicationTag = "test-ingest"
			b, err := openServeBackend(ctx, t.TempDir(), &tc.so, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.ready(ctx); err != nil {
				t.Fatal(err)
			}
			if (b.checkpoints != nil) != tc.lag {
				t.Errorf("checkpoints given: %v, want %v", b.checkpoints != nil, tc.lag)
			}
			now := time.Now().UTC()
			sub := &provision.Submission{BatchID: "backend-" + tc.name, InstallationID: "i", Region: "eu", ReceivedAt: now,
				Response: []byte(`{"first":true}`),
				Events:   []provision.Event{{ID: "ev-" + tc.name, Type: "os", Time: now, Fields: map[string]any{"os.type": "linux"}}}}
			if _, dup, err := b.log.Append(ctx, sub); err != nil || dup {
				t.Fatalf("append: %v %v", dup, err)
			}
			sub.Response = []byte(`{"second":true}`)
			resp, dup, err := b.log.Append(ctx, sub)
			if err != nil || !dup || string(resp) != `{"first":true}` {
				t.Fatalf("resend = %s %v %v", resp, dup, err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal("second close:", err)
			}
		})
	}
}
