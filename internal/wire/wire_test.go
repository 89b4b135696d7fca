package wire_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

func asError(err error, e **wire.Error) bool { return errors.As(err, e) }

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"-3":                            0,
		" 7 ":                           7 * time.Second,
		"soon":                          0,
		"1e3":                           0,
		"99999999999999999999":          0, // not an int64: unreadable, not huge
		"172800":                        wire.MaxRetryAfter,
		"Sat, 28 Nov 2026 12:00:30 GMT": 30 * time.Second,
		"Sat, 28 Nov 2026 11:00:00 GMT": 0,
		"Fri, 04 Dec 2026 12:00:00 GMT": wire.MaxRetryAfter,
	} {
		if got := wire.ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestWriteErrorRoundTrip writes every kind of error with the server's
// writer and reads it with the client's reader.
func TestWriteErrorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		err       error
		status    int
		code      string
		retryable bool
		after     time.Duration
	}{
		{wire.Errorf(http.StatusBadRequest, wire.CodeBadJSON, "not JSON at byte %d", 3), 400, wire.CodeBadJSON, false, 0},
		{wire.Busy(http.StatusTooManyRequests, wire.CodeOverloaded, "later", 1500*time.Millisecond), 429, wire.CodeOverloaded, true, 2 * time.Second},
		{wire.Busy(http.StatusServiceUnavailable, wire.CodeUnavailable, "stopping", 5*time.Second), 503, wire.CodeUnavailable, true, 5 * time.Second},
		{errors.New("disk full at /var/secret"), 500, wire.CodeInternal, true, 0},
	} {
		rec := httptest.NewRecorder()
		wire.WriteError(rec, tc.err)
		resp := rec.Result()
		if resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", resp.Header.Get("Content-Type"))
		}
		_, err := wire.ReadAnswer(resp, time.Now())
		var e *wire.Error
		if !errors.As(err, &e) {
			t.Fatalf("%v: read back %v", tc.err, err)
		}
		if e.Status != tc.status || e.Code != tc.code || e.Retryable() != tc.retryable || e.RetryAfter != tc.after {
			t.Errorf("%v: read back %+v", tc.err, e)
		}
		if wire.IsRetryable(err) != tc.retryable {
			t.Errorf("%v: IsRetryable = %v", tc.err, !tc.retryable)
		}
		if tc.code == wire.CodeInternal && e.Message != "internal error" {
			t.Errorf("an internal error's details reached the client: %q", e.Message)
		}
	}
}

func TestReadAnswerWithoutABody(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.WriteHeader(http.StatusForbidden)
	_, err := wire.ReadAnswer(rec.Result(), time.Now())
	var e *wire.Error
	if !errors.As(err, &e) || e.Code != "http_403" || e.Message != "Forbidden" || wire.IsRetryable(err) {
		t.Fatalf("got %+v", err)
	}
}

func TestDuplicateAnswer(t *testing.T) {
	first, _ := json.Marshal(wire.SubmitAnswer{BatchID: "b", Accepted: 2, Rejected: []wire.Rejection{}})
	var again wire.SubmitAnswer
	if err := json.Unmarshal(wire.MarkDuplicate(first), &again); err != nil || !again.Duplicate || again.Accepted != 2 {
		t.Fatalf("resend answer %+v, %v", again, err)
	}
	var orig wire.SubmitAnswer
	if json.Unmarshal(first, &orig); orig.Duplicate {
		t.Fatal("MarkDuplicate changed the stored first answer")
	}
}

// TestCertificateFailureIsPermanent dials a real TLS server whose
// certificate the client does not trust.
func TestCertificateFailureIsPermanent(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	_, err := http.Get(srv.URL)
	if err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
	if !wire.IsCertificateError(err) || wire.IsRetryable(err) {
		t.Fatalf("certificate error %v: retryable %v", err, wire.IsRetryable(err))
	}

	srv.Close()
	_, err = srv.Client().Get(srv.URL)
	if err == nil || !wire.IsRetryable(err) {
		t.Fatalf("a refused connection should be retryable: %v", err)
	}
}

func TestClassification(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("some bug"), false},
		{context.Canceled, false},
		{wire.Transient(errors.New("cut")), true},
		{wire.Permanent(wire.Transient(errors.New("cut"))), false},
		{fmt.Errorf("send: %w", wire.Errorf(502, "http_502", "Bad Gateway")), true},
		{wire.Errorf(408, "http_408", "Request Timeout"), true},
		{wire.Errorf(409, wire.CodeRequestConflict, "x"), false},
		{wire.Errorf(501, wire.CodeNotImplemented, "x"), true},
	} {
		if got := wire.IsRetryable(tc.err); got != tc.want {
			t.Errorf("IsRetryable(%v) = %v", tc.err, got)
		}
	}
}

// waits records what Retry waited.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) notify(_ int, d time.Duration, _ error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
}

func TestRetryGrowsAndStopsAtMaxAttempts(t *testing.T) {
	var w waits
	calls := 0
	busy := wire.Errorf(503, wire.CodeUnavailable, "down")
	_, err := wire.Retry(context.Background(), wire.Policy{Initial: time.Millisecond, Max: time.Second, MaxAttempts: 6, Notify: w.notify},
		func() (int, error) { calls++; return 0, busy })
	if !errors.Is(err, busy) || calls != 6 || len(w.d) != 5 {
		t.Fatalf("err %v after %d calls, waits %v", err, calls, w.d)
	}
	// ±50 % jitter around 1, 2, 4, 8, 16 ms.
	for i, d := range w.d {
		base := time.Millisecond << i
		if d < base/2 || d > base*3/2 {
			t.Errorf("wait %d = %v, want within 50 %% of %v", i, d, base)
		}
	}
}

func TestRetryStopsAtOnceOnPermanent(t *testing.T) {
	calls := 0
	refused := wire.Errorf(400, wire.CodeBadBatch, "no")
	_, err := wire.Retry(context.Background(), wire.Policy{Initial: time.Millisecond},
		func() (int, error) { calls++; return 0, refused })
	if err != refused || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestRetryHonoursRetryAfterAsAFloor(t *testing.T) {
	var w waits
	calls := 0
	v, err := wire.Retry(context.Background(), wire.Policy{Initial: time.Millisecond, Notify: w.notify},
		func() (string, error) {
			calls++
			if calls == 1 {
				return "", wire.Busy(429, wire.CodeOverloaded, "later", time.Second)
			}
			return "ok", nil
		})
	if err != nil || v != "ok" || len(w.d) != 1 || w.d[0] < time.Second {
		t.Fatalf("got %q, %v after waits %v", v, err, w.d)
	}
}

func TestRetryRefusesAWaitLongerThanMaxWait(t *testing.T) {
	calls := 0
	_, err := wire.Retry(context.Background(), wire.Policy{Initial: time.Millisecond, MaxWait: time.Minute},
		func() (int, error) { calls++; return 0, wire.Busy(503, wire.CodeUnavailable, "later", time.Hour) })
	if !errors.Is(err, wire.ErrWaitTooLong) || !wire.IsRetryable(err) || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestRetryEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := wire.Retry(ctx, wire.Policy{Initial: time.Hour, Max: time.Hour}, func() (int, error) {
		calls++
		time.AfterFunc(10*time.Millisecond, cancel)
		return 0, wire.Transient(errors.New("cut"))
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}
