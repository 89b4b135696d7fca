package privacy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

// noticeQueue is a NoticeStore in memory that can fail.
type noticeQueue struct {
	notices map[string]*Notice // by recipient
	fail    error
}

func (q *noticeQueue) EnqueueNotices(_ context.Context, requestID, id string, recipients []string, at time.Time) error {
	for _, r := range recipients {
		if q.notices[r] == nil {
			q.notices[r] = &Notice{RequestID: requestID, Recipient: r, InstallationID: id, State: NoticePending, NextAt: at}
		}
	}
	return q.fail
}

func (q *noticeQueue) ClaimNotices(_ context.Context, now, until time.Time, limit int) ([]Notice, error) {
	var out []Notice
	for _, n := range q.notices {
		if n.State == NoticePending && !n.NextAt.After(now) && len(out) < limit {
			out = append(out, *n)
			n.NextAt = until
		}
	}
	return out, q.fail
}

func (q *noticeQueue) ConfirmNotice(_ context.Context, _, recipient string, at time.Time) error {
	n := q.notices[recipient]
	n.State, n.ConfirmedAt, n.InstallationID = NoticeConfirmed, at, ""
	return q.fail
}

func (q *noticeQueue) DeferNotice(_ context.Context, _, recipient string, attempts int, next time.Time, lastError string) error {
	n := q.notices[recipient]
	n.Attempts, n.NextAt, n.LastError = attempts, next, lastError
	return q.fail
}

func (q *noticeQueue) Notices(context.Context, string) ([]Notice, error) { return nil, q.fail }

// A notice for a recipient that is no longer configured, or whose
// recipient fails, is deferred by the policy with the error, the id
// replaced; a confirmation forgets the id; a store failure is returned.
func TestNotifierDefersAndConfirms(t *testing.T) {
	const id = "7c1f3a52-9d0e-4b8a-a1c2-3e4f5a6b7c8d"
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	q := &noticeQueue{notices: map[string]*Notice{}}
	if err := q.EnqueueNotices(context.Background(), "r1", id, []string{"gone", "flaky"}, now); err != nil {
		t.Fatal(err)
	}
	fail := true
	reg := new(Registry)
	if err := reg.Register(Owner{Engine: EngineRecipient, Name: "flaky", Names: true, Retention: "r",
		Notify: func(_ context.Context, got string) (time.Time, error) {
			if fail {
				return time.Time{}, errors.New("answer 503 for " + got)
			}
			return now.Add(time.Minute), nil
		}}); err != nil {
		t.Fatal(err)
	}
	n := &Notifier{Store: q, Owners: reg, Policy: wire.Policy{Initial: time.Second, Max: time.Second}, Now: func() time.Time { return now }}
	if c, err := n.Deliver(context.Background()); err != nil || c != 0 {
		t.Fatalf("deliver = %d %v", c, err)
	}
	for _, name := range []string{"gone", "flaky"} {
		nt := q.notices[name]
		if nt.Attempts != 1 || !nt.NextAt.After(now) || nt.State != NoticePending || nt.LastError == "" || strings.Contains(nt.LastError, id) {
			t.Errorf("after a failure, %s = %+v", name, nt)
		}
	}
	fail = false
	now = now.Add(2 * time.Second)
	if c, err := n.Deliver(context.Background()); err != nil || c != 1 {
		t.Fatalf("deliver = %d %v, want 1 confirmed", c, err)
	}
	if nt := q.notices["flaky"]; nt.State != NoticeConfirmed || nt.InstallationID != "" || !nt.ConfirmedAt.Equal(now.Add(time.Minute)) {
		t.Errorf("confirmed notice = %+v", nt)
	}
	if nt := q.notices["gone"]; nt.State != NoticePending || nt.Attempts != 2 || nt.InstallationID != id {
		t.Errorf("notice of an unconfigured recipient = %+v", nt)
	}
	q.fail = errors.New("disk full")
	if _, err := n.Deliver(context.Background()); err == nil {
		t.Error("a store failure was not returned")
	}
}
