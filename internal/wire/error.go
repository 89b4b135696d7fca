package wire

import (
	"fmt"
	"net/http"
	"time"
)

// Error is an answer other than 2xx, on either side of the wire: a server
// returns one to have it written, a client gets one back from Check.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // what the server asked to wait; 0 when nothing
}

func (e *Error) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Retryable reports whether the same request may succeed later: the
// server was busy (429), failed (5xx) or timed the request out (408).
// Every other answer would be given again.
func (e *Error) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500
}

// Errorf builds an error answer.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Busy builds a retryable answer that asks the client to wait.
func Busy(status int, code, message string, after time.Duration) *Error {
	return &Error{Status: status, Code: code, Message: message, RetryAfter: after}
}
