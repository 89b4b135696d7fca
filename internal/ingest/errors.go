package ingest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Error codes of the API. They are part of the contract with agents:
// documented in api/openapi.yaml, matched on by machines.
const (
	CodeBodyTooLarge         = "body_too_large"         // 413
	CodeDecompressedTooLarge = "decompressed_too_large" // 413
	CodeCompressionRatio     = "compression_ratio"      // 413
	CodeUnsupportedEncoding  = "unsupported_encoding"   // 415
	CodeUnsupportedMediaType = "unsupported_media_type" // 415
	CodeBadCompression       = "bad_compression"        // 400: truncated or corrupt gzip/zstd
	CodeBadEncoding          = "bad_encoding"           // 400: not UTF-8
	CodeTooDeep              = "too_deep"               // 400: JSON nesting over the limit
	CodeBadJSON              = "bad_json"               // 400: not JSON, or the envelope has the wrong shape
	CodeUnknownField         = "unknown_field"          // 400: the envelope has a key the API does not define
	CodeTooManyEvents        = "too_many_events"        // 400
	CodeBadBatch             = "bad_batch"              // 400: batch id, sent_at or manifest version missing or malformed
	CodeMethodNotAllowed     = "method_not_allowed"     // 405
	CodeNotFound             = "not_found"              // 404
	CodeOverloaded           = "overloaded"             // 429: too much work in flight; retry after the delay
	CodeUnavailable          = "unavailable"            // 503: the store cannot take work now, or the server is stopping
	CodeNotImplemented       = "not_implemented"        // 501
	CodeInternal             = "internal"               // 500

	CodeDuplicateKey       = "duplicate_key"            // 400: an object names a key twice
	CodeKeyCase            = "key_case"                 // 400: a key differs from a defined one only in letter case
	CodeNonCanonicalNumber = "non_canonical_number"     // 400: -0, or an integer written with a fraction or an exponent
	CodeUnknownManifest    = "unknown_manifest_version" // 400: manifest_version is not one this server accepts
	CodeBadSentAt          = "bad_sent_at"              // 400: sent_at missing, malformed, or decades away from the server's clock
	CodeBadInstallationID  = "bad_installation_id"      // 400: the nil UUID, or a v4 UUID whose random bits are all zero
	CodeDecodedTooLarge    = "decoded_too_large"        // 413: decoding would allocate more than one request's share
	CodeTooSlow            = "too_slow"                 // 408: the body arrived slower than the minimum transfer rate
	CodeRateLimited        = "rate_limited"             // 429: this client sent more requests than its rate allows
)

// Per-event rejection codes that ingest adds to the manifest's own.
const (
	RejectDuplicateEvent = "duplicate_event" // the event id appears earlier in the same batch
	RejectBadTime        = "bad_time"        // the event time is too far in the past or the future
	RejectMalformed      = "malformed_event" // the event is not an object of the documented shape
)

// apiError is an answer other than 200. Status and code decide what the
// agent does: 4xx is permanent (drop the batch), 429/503 retryable.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds; set for 429 and 503
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, message string) *apiError {
	return &apiError{Status: status, Code: code, Message: message}
}

func retryable(status int, code, message string, after int) *apiError {
	return &apiError{Status: status, Code: code, Message: message, RetryAfter: after}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError writes err in the documented shape. Anything that is not an
// *apiError is an internal error whose details stay in the server log.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = errorf(http.StatusInternalServerError, CodeInternal, "internal error")
	}
	var body errorBody
	body.Error.Code = ae.Code
	body.Error.Message = ae.Message
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	writeJSON(w, ae.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte{'\n'})
}
