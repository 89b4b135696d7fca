package ingest

import (
	"net/http"
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

// apiError is an answer other than 200. Status and code decide what the
// agent does (wire.IsRetryable): 4xx is permanent, 429/503 retryable.
type apiError = wire.Error

func errorf(status int, code, message string) *apiError {
	return &wire.Error{Status: status, Code: code, Message: message}
}

func retryable(status int, code, message string, seconds int) *apiError {
	return wire.Busy(status, code, message, time.Duration(seconds)*time.Second)
}

func writeError(w http.ResponseWriter, err error) { wire.WriteError(w, err) }

func writeJSON(w http.ResponseWriter, status int, v any) { wire.WriteJSON(w, status, v) }
