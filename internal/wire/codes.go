package wire

// Error codes of the API, in the error body of an answer other than 2xx.
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
	CodeBadInstallationID    = "bad_installation_id"    // 400: not an installation's random UUID
	CodeBadRequestID         = "bad_request_id"         // 400: a deletion request id that is not a UUID
	CodeUnauthorized         = "unauthorized"           // 401: the admin endpoints want a bearer token
	CodeNotFound             = "not_found"              // 404
	CodeMethodNotAllowed     = "method_not_allowed"     // 405
	CodeRequestConflict      = "request_conflict"       // 409: a request id reused for another installation
	CodeOverloaded           = "overloaded"             // 429: too much work in flight; retry after the delay
	CodeTooManyAttempts      = "too_many_attempts"      // 429: too many failed operator tokens; retry after the delay
	CodeInternal             = "internal"               // 500
	CodeNotImplemented       = "not_implemented"        // 501
	CodeUnavailable          = "unavailable"            // 503: the store cannot take work now, or the server is stopping

	// The strict decoder's and admission's codes.
	CodeDuplicateKey       = "duplicate_key"            // 400: an object names a key twice
	CodeKeyCase            = "key_case"                 // 400: a key differs from a defined one only in letter case
	CodeNonCanonicalNumber = "non_canonical_number"     // 400: -0, or an integer written with a fraction or an exponent
	CodeUnknownManifest    = "unknown_manifest_version" // 400: manifest_version is not one this server accepts
	CodeBadSentAt          = "bad_sent_at"              // 400: sent_at missing, malformed, or further from the server's clock than clock correction trusts (three years)
	CodeDecodedTooLarge    = "decoded_too_large"        // 413: decoding would allocate more than one request's share
	CodeTooSlow            = "too_slow"                 // 408: the body arrived slower than the minimum transfer rate
	CodeRateLimited        = "rate_limited"             // 429: this client sent more requests than its rate allows
)

// Per-event rejection codes that ingest adds to the manifest's own
// (manifest.Code), in SubmitAnswer.Rejected.
const (
	RejectDuplicateEvent = "duplicate_event" // the event id appears earlier in the same batch
	RejectBadTime        = "bad_time"        // the event time is too far in the past or the future
	RejectMalformed      = "malformed_event" // the event is not an object of the documented shape
)
