package forward_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/provisionhq/provision/internal/forward"
)

// The receiving side parses a header from outside: it must never panic and
// never accept a signature that was not made with the secret.
func FuzzVerifySignature(f *testing.F) {
	now := time.Unix(1_790_000_000, 0)
	body := []byte(`{"delivery_id":"x"}`)
	f.Add(forward.Sign(webhookSecret, now, body), body)
	f.Add("t=1790000000,v1=00", body)
	f.Add("t=,v1=", []byte{})
	f.Add(strings.Repeat("v1=ab,", 200), body)
	f.Fuzz(func(t *testing.T, header string, b []byte) {
		if forward.VerifySignature(header, b, webhookSecret, now, 5*time.Minute) != nil {
			return
		}
		// Accepted: the header must hold the true signature for its timestamp.
		_, rest, _ := strings.Cut(header, "t=")
		ts, _, _ := strings.Cut(rest, ",")
		secs, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			t.Fatalf("accepted %q without a readable timestamp", header)
		}
		_, sig, _ := strings.Cut(forward.Sign(webhookSecret, time.Unix(secs, 0), b), ",")
		if !strings.Contains(strings.ToLower(header), sig) {
			t.Fatalf("accepted %q, which lacks the true signature", header)
		}
	})
}

func FuzzDecodeValidation(f *testing.F) {
	f.Add([]byte(`{"validationMessages":[{"fieldPath":"events","description":"x","validationCode":"VALUE_INVALID"}]}`))
	f.Add([]byte(`{"validationMessages":[]}`))
	f.Add([]byte(`[[[[[[[[[[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = forward.DecodeValidation(bytes.NewReader(data))
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("google_analytics: {measurement_id: G, api_secret_env: X, endpoint: region1}\n"))
	f.Add([]byte("third_party: {url: 'https://x', secret_file: f}\nretry: {max_attempts: 3}\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := forward.ParseConfig(data)
		if err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("ParseConfig accepted what Validate refuses: %v", err)
			}
		}
	})
}

// Whatever the fields, a body the GA4 sender builds keeps the documented
// limits, or the sender refuses to build it.
func FuzzGA4Body(f *testing.F) {
	f.Add(`{"software.name":"S","os.update_packages":["KB1","KB2"]}`)
	f.Add(`{"software.name":"` + strings.Repeat("é", 150) + `"}`)
	f.Add(`{"a":1,"b":true,"c":[1,2,3]}`)
	g, err := forward.NewGA4(forward.GA4Config{MeasurementID: "G-1", APISecret: "s", Now: func() time.Time { return day1 }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		fields := map[string]any{}
		if json.Unmarshal([]byte(doc), &fields) != nil {
			return
		}
		fields["installation.id"] = installation(1)
		body, err := g.Body(&forward.Count{Time: day1, Fields: fields})
		if err != nil {
			return
		}
		if len(body) >= forward.GA4MaxBodyBytes {
			t.Fatalf("body of %d bytes", len(body))
		}
		var req forward.MPRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatal(err)
		}
		if len(req.Events) != 1 || len(req.Events[0].Params) > forward.GA4MaxParamsPerEvent {
			t.Fatalf("events = %+v", req.Events)
		}
		for k, v := range req.Events[0].Params {
			if len(k) > forward.GA4MaxNameLength {
				t.Fatalf("parameter name %q", k)
			}
			if s, ok := v.(string); ok && utf8.RuneCountInString(s) > forward.GA4MaxParamValueLength {
				t.Fatalf("parameter %s value of %d characters", k, utf8.RuneCountInString(s))
			}
		}
	})
}
