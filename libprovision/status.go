package main

import (
	"context"
	"errors"

	"github.com/provisionhq/provision/agent"
)

// abiVersion is PROVISION_ABI_VERSION of the header this library
// implements (TestHeaderMatchesGo).
const abiVersion = 1

// Status codes, as include/provision.h defines them. The values are part
// of the ABI: never renumber, only append (TestHeaderMatchesGo).
const (
	statusOK              = 0
	statusInvalidArgument = 1
	statusNoConsent       = 2
	statusValidation      = 3
	statusStateDirBusy    = 4
	statusClosed          = 5
	statusStorage         = 6
	statusUpload          = 7
	statusTimeout         = 8
	statusUploaderState   = 9
	statusInternal        = 10
)

var statusNames = map[int]string{
	statusOK:              "ok",
	statusInvalidArgument: "invalid_argument",
	statusNoConsent:       "no_consent",
	statusValidation:      "validation",
	statusStateDirBusy:    "state_dir_busy",
	statusClosed:          "closed",
	statusStorage:         "storage",
	statusUpload:          "upload",
	statusTimeout:         "timeout",
	statusUploaderState:   "uploader_state",
	statusInternal:        "internal",
}

// codedError is an error whose status code the call already knows, such
// as a malformed argument found before the agent was asked.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code, err}
}

func invalid(err error) error { return withCode(statusInvalidArgument, err) }

var (
	errClosed        = errors.New("libprovision: the agent handle is closed or unknown")
	errClosedInCall  = errors.New("libprovision: the agent was closed during the call; nothing was lost")
	errNotRunning    = errors.New("libprovision: the background uploader is not running")
	errAlreadyActive = errors.New("libprovision: the background uploader is already running")
)

// statusOf maps an error to its status code. The agent's sentinels and
// typed errors come first; an error the call did not classify is a
// storage failure unless fallback says otherwise.
func statusOf(err error, fallback int) int {
	var coded *codedError
	var verr *agent.ValidationError
	switch {
	case err == nil:
		return statusOK
	case errors.As(err, &coded):
		return coded.code
	case errors.Is(err, agent.ErrNoConsent):
		return statusNoConsent
	case errors.As(err, &verr):
		return statusValidation
	case errors.Is(err, agent.ErrStateDirBusy):
		return statusStateDirBusy
	case errors.Is(err, agent.ErrClosed), errors.Is(err, errClosed):
		return statusClosed
	case errors.Is(err, context.DeadlineExceeded):
		return statusTimeout
	case errors.Is(err, context.Canceled):
		return statusClosed
	}
	return fallback
}
