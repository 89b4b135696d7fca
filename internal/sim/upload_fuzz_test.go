package sim

import (
	"testing"
	"time"
)

// FuzzParseAnswer feeds the answer parser arbitrary statuses, Retry-After
// values and bodies: it must never panic, never wait longer than its cap,
// and a final answer is either a result or a refusal with a short code.
func FuzzParseAnswer(f *testing.F) {
	f.Add(200, "", []byte(`{"batch_id":"b","accepted":3,"rejected":[{"index":1,"code":"undeclared_field","message":"x"}],"duplicate":false}`))
	f.Add(503, "5", []byte(`{"error":{"code":"overloaded","message":"later"}}`))
	f.Add(429, "99999999999999999999", []byte(``))
	f.Add(400, "", []byte(`{"error":{"code":"bad_json","message":"no"}}`))
	f.Add(413, "", []byte(`{"error":`))
	f.Add(200, "", []byte(`{"accepted":"many"}`))
	f.Fuzz(func(t *testing.T, status int, retry string, body []byte) {
		var res Result
		wait, final, err := parseAnswer(status, retry, body, &res)
		if wait < 0 || wait > 30*time.Second {
			t.Fatalf("wait %s", wait)
		}
		if final && err != nil {
			t.Fatalf("final answer with error %v", err)
		}
		if final && status != 200 && (res.Dropped == "" || len(res.Dropped) > 64) {
			t.Fatalf("refusal with code %q", res.Dropped)
		}
	})
}
