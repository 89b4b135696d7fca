package transport

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		"-5":                            0,
		"junk":                          0,
		"99999999999":                   maxRetryAfter,
		"Sun, 29 Nov 2026 03:00:30 GMT": 30 * time.Second,
		"Sun, 29 Nov 2026 02:00:00 GMT": 0,
	}
	for in, want := range cases {
		if got := ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestBackoffIsFullJitterBoundedAndHonoursRetryAfter(t *testing.T) {
	top := Backoff{Base: time.Second, Max: time.Minute, Rand: func() float64 { return 0.999999 }}
	zero := Backoff{Base: time.Second, Max: time.Minute, Rand: func() float64 { return 0 }}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		got := top.Delay(i+1, 0)
		if got > w || got < w*99/100 {
			t.Errorf("attempt %d: %s, want just under %s", i+1, got, w)
		}
		if d := zero.Delay(i+1, 0); d != 0 {
			t.Errorf("full jitter must reach 0, got %s", d)
		}
		if d := zero.Delay(i+1, 90*time.Second); d != 90*time.Second {
			t.Errorf("Retry-After not honoured: %s", d)
		}
	}
	if d := top.Delay(1000, 0); d > time.Minute {
		t.Errorf("attempt 1000: %s", d)
	}
}

func TestClassify(t *testing.T) {
	now := time.Now()
	var ok SubmitResult
	if err := classify(200, "", []byte(`{"batch_id":"b","accepted":2,"rejected":[{"index":1,"code":"undeclared_field","message":"m"}],"duplicate":true}`), 200, &ok, now); err != nil || ok.Accepted != 2 || len(ok.Rejected) != 1 || !ok.Duplicate {
		t.Fatalf("200: %+v, %v", ok, err)
	}
	for _, status := range []int{429, 503, 500, 502} {
		err := classify(status, "3", []byte(`{"error":{"code":"busy","message":"later"}}`), 200, &ok, now)
		var r *RetryableError
		if !errors.As(err, &r) || r.RetryAfter != 3*time.Second || r.Status != status {
			t.Errorf("%d: %v", status, err)
		}
	}
	for _, status := range []int{400, 401, 403, 404, 413, 415, 422} {
		err := classify(status, "", []byte(`{"error":{"code":"bad_batch","message":"no"}}`), 200, &ok, now)
		var p *PermanentError
		if !errors.As(err, &p) || p.Status != status || p.Code != "bad_batch" {
			t.Errorf("%d: %v", status, err)
		}
	}
	var p *PermanentError
	if err := classify(418, "", []byte("<html>"), 200, &ok, now); !errors.As(err, &p) || p.Code != "http_418" {
		t.Errorf("418 without JSON: %v", err)
	}
	var r *RetryableError
	if err := classify(200, "", []byte("not json"), 200, &ok, now); !errors.As(err, &r) {
		t.Errorf("unreadable 200 must be retried, got %v", err)
	}
}

func TestNewRefusesWhatIsNotSafe(t *testing.T) {
	for _, o := range []Options{
		{Server: "http://127.0.0.1:1"},
		{Server: "127.0.0.1:1"},
		{Server: "https://127.0.0.1:1", Pin: "abcd"},
		{Server: "https://127.0.0.1:1", Encoding: "brotli"},
		{Server: "https://127.0.0.1:1", CAFile: "/nonexistent"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	c, err := New(Options{Server: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v := c.http.Transport.(*http.Transport).TLSClientConfig.MinVersion; v < 0x0303 {
		t.Fatalf("minimum TLS version %x", v)
	}
}

func FuzzClassify(f *testing.F) {
	f.Add(200, "", []byte(`{"batch_id":"b","accepted":1,"rejected":[],"duplicate":false}`))
	f.Add(503, "10", []byte(`{"error":{"code":"unavailable","message":"later"}}`))
	f.Add(400, "", []byte(`{"error":{"code":"bad","message":"`+string(make([]byte, 500))+`"}}`))
	f.Add(429, "Sun, 29 Nov 2026 03:00:30 GMT", []byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		var res SubmitResult
		err := classify(status, retryAfter, body, 200, &res, time.Now())
		var p *PermanentError
		if errors.As(err, &p) && (len(p.Code) > 64 || len(p.Message) > 300) {
			t.Fatalf("unbounded error text: %d/%d", len(p.Code), len(p.Message))
		}
		var r *RetryableError
		if errors.As(err, &r) && (r.RetryAfter < 0 || r.RetryAfter > maxRetryAfter) {
			t.Fatalf("retry after %s", r.RetryAfter)
		}
	})
}
