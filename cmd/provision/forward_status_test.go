package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/forward/forwardtest"
	"github.com/provisionhq/provision/internal/memlog"
)

func TestForwardStatusReport(t *testing.T) {
	ctx := context.Background()
	log := memlog.New()
	st := forwardtest.NewState()
	const inst = "6f1c1f1e-8a7b-4c55-9d1e-0a0b0c0d0e01"
	for i := range 5 {
		_, _, _ = log.Append(ctx, &provision.Submission{BatchID: "b" + string(rune('a'+i)), InstallationID: inst, Region: "eu",
			ReceivedAt: time.Now(), Events: []provision.Event{{ID: "e" + string(rune('a'+i)), Type: "user_count"}}})
	}
	_ = log.SetCheckpoint(ctx, "forward.google_analytics", 5)
	_ = log.SetCheckpoint(ctx, "forward.third_party", 2)
	_ = st.AddDeadLetter(ctx, &forward.DeadLetter{Recipient: "third_party", InstallationID: inst, Day: "2026-11-28", Seq: 2,
		Count: []byte(`{}`), Attempts: 8, Reason: "retryable: HTTP 503: Service Unavailable", Retryable: true, CreatedAt: time.Now()})

	rep, err := inspectForwarders(ctx, log, log, st, 2)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Healthy || !rep.Forwarders[0].Healthy || rep.Forwarders[1].Healthy || rep.Forwarders[1].Lag != 3 || rep.Forwarders[1].DeadLetters != 1 {
		t.Fatalf("report = %+v", rep)
	}
	var text, js bytes.Buffer
	if err := rep.write(&text, "text"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"google_analytics", "behind the log by 3 records", "dead letters of third_party", "HTTP 503"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if err := rep.write(&js, "json"); err != nil {
		t.Fatal(err)
	}
	var back forwardReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.DeadLetters["third_party"]) != 1 {
		t.Errorf("json: %v %s", err, js.String())
	}
	if strings.Contains(text.String()+js.String(), inst) {
		t.Error("status printed an installation id")
	}
	if rep.write(&text, "xml") == nil {
		t.Error("unknown format accepted")
	}
}
