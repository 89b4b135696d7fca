package privacy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/provisionhq/provision/internal/clock"
	"github.com/provisionhq/provision/internal/wire"
)

// Notice states.
const (
	NoticePending   = "pending"
	NoticeConfirmed = "confirmed"
)

// Notice is one recipient's deletion notice for one erasure request: the
// recipient is told to delete what it received of the installation.
type Notice struct {
	RequestID string
	Recipient string // the recipient owner's Name
	// InstallationID is what the recipient deletes; "" once confirmed.
	InstallationID string
	State          string // NoticePending or NoticeConfirmed
	Attempts       int
	NextAt         time.Time // the next attempt, while pending
	ConfirmedAt    time.Time // the time the recipient gave, once confirmed
	LastError      string    // of the last failed attempt; never the id
}

// NoticeStore is a Store that queues deletion notices durably, so that a
// recipient that is down, or a server that stops, delays a notice but never
// loses it. The SQLite and PostgreSQL stores implement it.
type NoticeStore interface {
	// EnqueueNotices records a pending notice, due at, for each recipient
	// of the request; notices the request already has are left as they
	// are.
	EnqueueNotices(ctx context.Context, requestID, installationID string, recipients []string, at time.Time) error
	// ClaimNotices returns up to limit pending notices due at or before
	// now, the longest due first, and makes them due again only at until,
	// in one statement: another notifier on the same store (a second
	// server) does not take them meanwhile, and a notifier that stops
	// before it confirms or defers one leaves it to be taken at until.
	ClaimNotices(ctx context.Context, now, until time.Time, limit int) ([]Notice, error)
	// ConfirmNotice records the recipient's confirmation and forgets the
	// installation id.
	ConfirmNotice(ctx context.Context, requestID, recipient string, at time.Time) error
	// DeferNotice records a failed attempt and when to try again.
	DeferNotice(ctx context.Context, requestID, recipient string, attempts int, next time.Time, lastError string) error
	// Notices returns the notices of the request.
	Notices(ctx context.Context, requestID string) ([]Notice, error)
}

// NoticeLease is how long a claimed notice is left to its notifier: far
// longer than one attempt (a recipient's client times out after 30 s).
const NoticeLease = 2 * time.Minute

// DefaultNoticePolicy is how a notice is retried: the wire's one policy,
// never giving up (a recipient must be told), waiting at most an hour
// between attempts.
var DefaultNoticePolicy = wire.Policy{Initial: time.Second, Max: time.Hour}

// Notifier delivers the queued deletion notices: each due notice is sent
// once per pass with its recipient's Notify; a confirmation is recorded
// with its time, a failure with the next attempt's time by Policy. It is
// the server's "notices" job.
type Notifier struct {
	Store  NoticeStore
	Owners *Registry
	Policy wire.Policy      // Initial and Max zero: DefaultNoticePolicy
	Every  time.Duration    // how often to look for due notices; default 5 s
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger     // nil discards; never given an installation id

	kick chan struct{} // made by Service; nil: no Kick
}

// Kick asks for a pass now, as after an erasure queued notices.
func (n *Notifier) Kick() {
	if n.kick == nil {
		return
	}
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *Notifier) now() time.Time {
	if n.Now == nil {
		return time.Now()
	}
	return n.Now()
}

func (n *Notifier) logger() *slog.Logger {
	if n.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return n.Logger
}

// Deliver sends every notice due now once and returns how many were
// confirmed. A recipient's failure defers its notice; only the store's
// failure is returned.
func (n *Notifier) Deliver(ctx context.Context) (int, error) {
	recipients := map[string]Owner{}
	for _, o := range n.Owners.Owners() {
		if o.Engine == EngineRecipient && o.Notify != nil {
			recipients[o.Name] = o
		}
	}
	policy := n.Policy
	if policy.Initial <= 0 && policy.Max <= 0 {
		policy = DefaultNoticePolicy
	}
	confirmed := 0
	for range 1000 { // bounded: at most 100,000 notices per pass
		if ctx.Err() != nil {
			return confirmed, ctx.Err()
		}
		// Not cancelled half-way: a claim that committed is either tried
		// or released below.
		now := n.now()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		due, err := n.Store.ClaimNotices(wctx, now, now.Add(NoticeLease), 100)
		cancel()
		if err != nil {
			return confirmed, fmt.Errorf("notices: %w", err)
		}
		for i, nt := range due {
			if ctx.Err() != nil {
				n.release(ctx, due[i:])
				return confirmed, ctx.Err()
			}
			o, ok := recipients[nt.Recipient]
			var at time.Time
			if ok {
				at, err = o.Notify(ctx, nt.InstallationID)
			} else {
				err = errors.New("recipient not configured")
			}
			if err == nil {
				// Recorded even when ctx ended meanwhile: the recipient
				// confirmed.
				wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				err := n.Store.ConfirmNotice(wctx, nt.RequestID, nt.Recipient, at.UTC())
				cancel()
				if err != nil {
					return confirmed, fmt.Errorf("notices: %w", err)
				}
				confirmed++
				n.logger().Info("recipient confirmed the deletion", "request_id", nt.RequestID, "recipient", nt.Recipient)
				continue
			}
			if ctx.Err() != nil {
				n.release(ctx, due[i:])
				return confirmed, ctx.Err()
			}
			attempts := nt.Attempts + 1
			wait := policy.Wait(attempts, err)
			msg := strings.ReplaceAll(err.Error(), nt.InstallationID, "[installation id]")
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err = n.Store.DeferNotice(wctx, nt.RequestID, nt.Recipient, attempts, n.now().Add(wait), msg)
			cancel()
			if err != nil {
				return confirmed, fmt.Errorf("notices: %w", err)
			}
			n.logger().Warn("deletion notice failed; will retry", "request_id", nt.RequestID, "recipient", nt.Recipient,
				"attempt", attempts, "wait", wait, "err", msg)
		}
		if len(due) < 100 {
			break
		}
	}
	return confirmed, nil
}

// release gives claimed notices back, due now, when the notifier stops
// before trying them (a clean stop; after a crash they wait out the
// lease).
func (n *Notifier) release(ctx context.Context, claimed []Notice) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, nt := range claimed {
		if err := n.Store.DeferNotice(wctx, nt.RequestID, nt.Recipient, nt.Attempts, n.now(), nt.LastError); err != nil {
			n.logger().Warn("releasing a deletion notice failed; it is retried after its lease", "request_id", nt.RequestID,
				"recipient", nt.Recipient, "err", err)
		}
	}
}

// Run delivers due notices every Every, and at once after Kick, until ctx
// ends. Store failures are logged and retried at the next pass.
func (n *Notifier) Run(ctx context.Context) error {
	every := n.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	clock.Every(ctx, every, n.kick, func(ctx context.Context) {
		if _, err := n.Deliver(ctx); err != nil && ctx.Err() == nil {
			n.logger().Warn("delivering deletion notices failed; retrying", "err", err)
		}
	})
	return nil
}

// withNotices sets, on the receipt's recipient outcomes, the state of
// their notices: pending with the attempts so far, or confirmed and when.
func withNotices(r *Request, notices []Notice) {
	if r.Removed == nil {
		return
	}
	for _, nt := range notices {
		key := EngineRecipient + ":" + nt.Recipient
		for i := range r.Removed.Owners {
			o := &r.Removed.Owners[i]
			if o.Owner != key {
				continue
			}
			switch nt.State {
			case NoticeConfirmed:
				o.Status, o.At, o.Detail = OutcomeConfirmed, nt.ConfirmedAt, ""
			default:
				o.Status, o.At = OutcomeNoticePending, time.Time{}
				o.Detail = fmt.Sprintf("%d attempts; next at %s", nt.Attempts, nt.NextAt.UTC().Format(time.RFC3339))
				if nt.LastError != "" {
					o.Detail += "; last error: " + nt.LastError
				}
			}
		}
	}
}
