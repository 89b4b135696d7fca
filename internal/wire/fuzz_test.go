package wire_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "5", "-1", "Sat, 28 Nov 2026 12:00:30 GMT", "99999999999999999999", "1e3"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d := wire.ParseRetryAfter(s, now)
		if d < 0 || d > wire.MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %v", s, d)
		}
	})
}

// FuzzReadAnswer feeds a server's answer body of any status: the result is
// a body for 2xx and a bounded, valid-UTF-8 *Error otherwise.
func FuzzReadAnswer(f *testing.F) {
	f.Add(200, "", []byte(`{"batch_id":"b","accepted":1,"rejected":[],"duplicate":false}`))
	f.Add(400, "", []byte(`{"error":{"code":"bad_json","message":"x"}}`))
	f.Add(503, "7", []byte(`{"error":{"code":"unavailable","message":"later"}}`))
	f.Add(429, "Sat, 28 Nov 2026 12:00:30 GMT", []byte("\xff\xfe not json"))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		if status < 200 || status > 599 {
			return
		}
		rec := httptest.NewRecorder()
		rec.Header().Set("Retry-After", retryAfter)
		rec.WriteHeader(status)
		rec.Body.Write(body)
		data, err := wire.ReadAnswer(rec.Result(), time.Now())
		if status/100 == 2 {
			if err != nil || string(data) != string(body) {
				t.Fatalf("2xx answer: %q, %v", data, err)
			}
			return
		}
		var e *wire.Error
		if !asError(err, &e) {
			t.Fatalf("status %d gave %v", status, err)
		}
		if len(e.Code) == 0 || len(e.Code) > 64 || len(e.Message) > 300 || !utf8Valid(e.Code+e.Message) {
			t.Fatalf("unbounded error %+v", e)
		}
		if e.RetryAfter < 0 || e.RetryAfter > wire.MaxRetryAfter || (e.RetryAfter > 0 && !e.Retryable()) {
			t.Fatalf("bad Retry-After %v for status %d", e.RetryAfter, status)
		}
		_ = http.StatusText(status)
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }
