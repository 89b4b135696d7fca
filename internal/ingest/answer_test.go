package ingest_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/ingest/ingesttest"
)

// The answer of a batch is stored for resends and read back into the
// agent's sent log: it may not quote what the client sent. A rejected
// value, an undeclared field's name and an unparsable time string are
// gone from the first answer and from the resend's, which equals the first.
func TestAnswersQuoteNothingOfTheInput(t *testing.T) {
	e := newEnv(t)
	b := e.batch(8)
	b.Events[0].Fields["task.status"] = "canary-enum-b61f@example.com"    // not one of the enum's values
	b.Events[4].Fields["task.duration"] = "canary-value-7d20@example.com" // wrong type
	b.Events[1].Fields["canary_field_c0ffee_example_com"] = "x"           // undeclared, the name is the secret
	b.Events[2].Type = "canary-type-9a11"                                 // undeclared event type
	body := ingesttest.JSON(b)
	// Event 3 gets a time that does not parse.
	body = bytes.Replace(body, []byte(fmt.Sprintf(`"id":%q,"type":"user_count","time":"`, b.Events[3].ID)),
		[]byte(fmt.Sprintf(`"id":%q,"type":"user_count","time":"canary-time-5e5e","x":"`, b.Events[3].ID)), 1)
	canaries := []string{"canary-enum", "canary-value", "canary_field", "canary-type", "canary-time", "example.com"}

	first := e.post(body, "")
	if first.status != 200 {
		t.Fatal(first.status, string(first.body))
	}
	resp := first.response(t)
	if len(resp.Rejected) != 5 {
		t.Fatalf("rejections = %+v, want 5", resp.Rejected)
	}
	for _, rej := range resp.Rejected {
		if rej.Code == "" || rej.Message == "" {
			t.Errorf("rejection %+v lacks a code or message", rej)
		}
	}
	for _, c := range canaries {
		if bytes.Contains(first.body, []byte(c)) {
			t.Errorf("the answer quotes %q: %s", c, first.body)
		}
	}
	again := e.post(body, "")
	want := strings.Replace(string(first.body), `"duplicate":false`, `"duplicate":true`, 1)
	if string(again.body) != want {
		t.Errorf("resend answered\n%s\nwant\n%s", again.body, want)
	}
}
