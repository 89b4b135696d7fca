package wire

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
)

var internalBody = []byte(`{"error":{"code":"internal","message":"internal error"}}`)

// WriteError answers with err in the documented shape, with Retry-After
// when the error asks for a wait. Anything that is not an *Error is an
// internal error whose details stay in the server's log.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		WriteRaw(w, http.StatusInternalServerError, internalBody)
		return
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	WriteJSON(w, e.Status, ErrorBody{Error: ErrorDetail{Code: e.Code, Message: e.Message}})
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, internalBody
	}
	WriteRaw(w, status, b)
}

// WriteRaw answers with b, which is JSON already, and a newline.
func WriteRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte{'\n'})
}
