package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/provisionhq/provision/agent"
)

func TestStatusOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, statusOK},
		{fmt.Errorf("open: %w", agent.ErrStateDirBusy), statusStateDirBusy},
		{fmt.Errorf("record: %w", agent.ErrNoConsent), statusNoConsent},
		{&agent.ValidationError{Type: "task"}, statusValidation},
		{agent.ErrClosed, statusClosed},
		{errClosed, statusClosed},
		{invalid(errors.New("bad")), statusInvalidArgument},
		{withCode(statusUploaderState, errAlreadyActive), statusUploaderState},
		{fmt.Errorf("flush: %w", context.DeadlineExceeded), statusTimeout},
		{errors.New("disk on fire"), statusStorage},
	} {
		if got := statusOf(c.err, statusStorage); got != c.want {
			t.Errorf("statusOf(%v) = %d (%s), want %d (%s)", c.err, got, statusNames[got], c.want, statusNames[c.want])
		}
	}
	if got := statusOf(errors.New("not delivered"), statusUpload); got != statusUpload {
		t.Errorf("the fallback is not used: %d", got)
	}
}
