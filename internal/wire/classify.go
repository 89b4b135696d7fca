package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxAnswer bounds what a client reads of any answer.
const MaxAnswer = 1 << 20

// ReadAnswer reads a bounded answer. For 2xx it returns the body; for any
// other status an *Error with the server's code and message (or http_NNN
// when it gave none) and its Retry-After. A body that cannot be read is a
// transient error.
func ReadAnswer(resp *http.Response, now time.Time) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return nil, Transient(fmt.Errorf("reading the answer: %w", err))
	}
	if len(data) > MaxAnswer {
		return nil, Transient(fmt.Errorf("answer larger than %d bytes", MaxAnswer))
	}
	if resp.StatusCode/100 == 2 {
		return data, nil
	}
	return nil, answerError(resp.StatusCode, resp.Header.Get("Retry-After"), data, now)
}

// StatusError is the error of an answer whose body is not the API's (a
// third party's): the status alone decides, with its Retry-After.
func StatusError(status int, retryAfter string, now time.Time) *Error {
	return answerError(status, retryAfter, nil, now)
}

func answerError(status int, retryAfter string, data []byte, now time.Time) *Error {
	var body ErrorBody
	_ = json.Unmarshal(data, &body)
	e := &Error{Status: status, Code: clip(body.Error.Code, 64), Message: clip(body.Error.Message, 300)}
	if e.Code == "" {
		e.Code = "http_" + strconv.Itoa(status)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	if e.Retryable() {
		e.RetryAfter = ParseRetryAfter(retryAfter, now)
	}
	return e
}

// clip keeps a server's words short and printable.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}

type transient struct{ err error }

func (t *transient) Error() string { return t.err.Error() }
func (t *transient) Unwrap() error { return t.err }

type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Transient marks err as one a later attempt may overcome.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transient{err}
}

// Permanent marks err as one that sending again will not change.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

// IsRetryable reports whether sending the same request again may
// succeed. A certificate that does not verify is permanent: the server
// will present it again, and retrying would only hide the error. An
// answer is retryable as Error.Retryable says; a transport error (refused
// connection, reset, timeout) is retryable; so is what Transient marks.
// Everything else, a cancelled context included, is permanent.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var p *permanent
	if errors.As(err, &p) || IsCertificateError(err) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable()
	}
	var t *transient
	if errors.As(err, &t) {
		return true
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// IsCertificateError reports whether err is the server's certificate
// failing verification: an unknown authority, an expired or invalid
// certificate, a name mismatch.
func IsCertificateError(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
	)
	return errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &invalid) || errors.As(err, &hostname)
}

// RetryAfter is the wait a server asked for in the answer err carries; 0
// when it asked for none.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
