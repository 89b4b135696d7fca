// Package forward passes the daily user count on to the recipients the
// licence names — Google Analytics and an entrusted third-party provider —
// and nothing else.
//
// Each Forwarder is one consumer of the event log with its own checkpoint,
// so a recipient that is down never blocks or slows ingest: the log keeps
// growing, the forwarder falls behind (visible as lag) and catches up where
// it stopped. What leaves is decided by the manifest alone: the fields of a
// user_count event that the manifest declares for the recipient and the
// installation's region, checked once more with CheckRecipient just before
// sending. Each installation is counted at most once per UTC day of use per
// recipient: the day of the user_count event's time, so an agent that was
// offline for days is counted on each day it was used, not all on the day
// its backlog arrived. A recipient that accepts counts only up to an age
// (Google Analytics: 72 hours) is not sent older ones; they are counted
// in provision_forward_skipped_total{reason="too_old"}.
package forward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/clock"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/wire"
)

// EventType is the only event type whose fields are ever forwarded.
const EventType = "user_count"

// InstallationItem is the manifest item that carries the installation id in
// the batch envelope (provision.Record.InstallationID).
const InstallationItem = "installation.id"

// dayLayout formats the UTC day an installation is counted for.
const dayLayout = "2006-01-02"

// Count is one installation's daily user count as it leaves for one
// recipient. Fields holds only items the manifest declares for that
// recipient and region, keyed by item id; installation.id is among them
// only when declared.
type Count struct {
	Seq            int64          `json:"seq"`
	InstallationID string         `json:"installation_id"`
	Region         string         `json:"region"`
	Day            string         `json:"day"`
	Time           time.Time      `json:"time"`
	Fields         map[string]any `json:"fields"`
}

// Sender delivers counts to one recipient.
type Sender interface {
	// Recipient is the manifest recipient id the sender delivers to.
	Recipient() string
	// Send delivers one count. An error that wire.IsRetryable accepts means a
	// later attempt may succeed; any other error is permanent.
	Send(ctx context.Context, c *Count) error
}

// maxAger is a Sender whose recipient accepts counts only up to an age.
type maxAger interface {
	MaxAge() time.Duration
}

// Suppressor tells whether an installation may no longer be forwarded: its
// consent was withdrawn or its deletion requested. The privacy engine's
// erasure list implements it.
type Suppressor interface {
	Suppressed(ctx context.Context, installationID string) (bool, error)
}

// Options configure a Forwarder. Manifest, Log, Checkpoints, State,
// Suppressor and Sender are required.
type Options struct {
	Manifest    *manifest.Manifest
	Log         provision.Log
	Checkpoints provision.Checkpoints
	State       State
	Suppressor  Suppressor
	Sender      Sender

	Retry          RetryPolicy
	BatchSize      int           // records read from the log at once; default 500
	PollInterval   time.Duration // wait when caught up; default 2s
	RedriveEvery   time.Duration // how often retryable dead letters are tried again; default 10m
	MaxLag         int64         // lag above which Status reports unhealthy; default 10000
	KeepSentDays   int           // days of sent markers kept for the once-a-day rule; default 7
	Metrics        *Metrics      // nil: not exported
	Logger         *slog.Logger  // nil: discard
	Now            func() time.Time
	ConsumerPrefix string // checkpoint name is prefix + recipient; default "forward."
}

// Forwarder moves user counts from the log to one recipient.
type Forwarder struct {
	o         Options
	name      string
	recipient string
	log       *slog.Logger

	mu          sync.Mutex
	sent        uint64
	failed      uint64
	retried     uint64
	lastSuccess time.Time
	lastError   string
	lastErrorAt time.Time
	lastRedrive time.Time
}

// New checks the options and returns a forwarder.
func New(o Options) (*Forwarder, error) {
	var errs []error
	if o.Manifest == nil {
		errs = append(errs, errors.New("forward: Manifest is required"))
	}
	if o.Log == nil || o.Checkpoints == nil {
		errs = append(errs, errors.New("forward: Log and Checkpoints are required"))
	}
	if o.State == nil {
		errs = append(errs, errors.New("forward: State is required"))
	}
	if o.Suppressor == nil {
		errs = append(errs, errors.New("forward: Suppressor is required: erased installations must never be forwarded"))
	}
	if o.Sender == nil {
		errs = append(errs, errors.New("forward: Sender is required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.Manifest.EventType(EventType) == nil {
		return nil, fmt.Errorf("forward: manifest %s declares no %q event type", o.Manifest.Version, EventType)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.RedriveEvery <= 0 {
		o.RedriveEvery = 10 * time.Minute
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 10000
	}
	if o.KeepSentDays <= 0 {
		o.KeepSentDays = 7
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ConsumerPrefix == "" {
		o.ConsumerPrefix = "forward."
	}
	o.Retry = o.Retry.withDefaults()
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	r := o.Sender.Recipient()
	f := &Forwarder{o: o, recipient: r, name: o.ConsumerPrefix + r, log: lg.With("forwarder", r)}
	f.o.Metrics.init(r)
	return f, nil
}

// Name is the forwarder's checkpoint (consumer) name.
func (f *Forwarder) Name() string { return f.name }

// Recipient is the manifest recipient id.
func (f *Forwarder) Recipient() string { return f.recipient }

// Run forwards until ctx ends. It returns nil when ctx was cancelled.
func (f *Forwarder) Run(ctx context.Context) error {
	f.refreshDeadLetters(ctx)
	wait := f.o.PollInterval
	for {
		n, err := f.Step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil:
			// The store is unavailable; do not spin on it.
			f.noteError(err)
			f.log.Warn("forwarding step failed", "err", err)
			wait = min(wait*2, time.Minute)
		case n > 0:
			wait = f.o.PollInterval
			continue
		default:
			wait = f.o.PollInterval
			if f.o.Now().Sub(f.lastRedriveTime()) >= f.o.RedriveEvery {
				if _, err := f.Redrive(ctx, true); err != nil && ctx.Err() == nil {
					f.log.Warn("redrive failed", "err", err)
				}
				before := f.o.Now().UTC().AddDate(0, 0, -f.o.KeepSentDays).Format(dayLayout)
				if _, err := f.o.State.PruneSent(ctx, before); err != nil && ctx.Err() == nil {
					f.log.Warn("pruning sent markers failed", "err", err)
				}
			}
		}
		if clock.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// Step reads one batch of the log after the checkpoint, forwards what it
// must and moves the checkpoint. It returns how many records it read. The
// checkpoint only moves past records that were handled — delivered, found
// already sent, dead-lettered or not for this recipient — so a crash or a
// cancelled context resumes at the first record not handled.
func (f *Forwarder) Step(ctx context.Context) (int, error) {
	after, err := f.o.Checkpoints.Checkpoint(ctx, f.name)
	if err != nil {
		return 0, fmt.Errorf("forward %s: checkpoint: %w", f.recipient, err)
	}
	recs, err := f.o.Log.Read(ctx, after, f.o.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("forward %s: read log: %w", f.recipient, err)
	}
	done := after
	var stepErr error
	for i := range recs {
		if err := f.handle(ctx, &recs[i]); err != nil {
			stepErr = err
			break
		}
		done = recs[i].Seq
	}
	if done != after {
		// A cancelled ctx must not lose the progress made: save it without.
		if err := f.o.Checkpoints.SetCheckpoint(context.WithoutCancel(ctx), f.name, done); err != nil {
			return 0, fmt.Errorf("forward %s: save checkpoint: %w", f.recipient, err)
		}
	}
	if head, err := f.o.Log.Head(ctx); err == nil {
		f.o.Metrics.lag(f.recipient, head-done)
	}
	return len(recs), stepErr
}

// handle forwards one record if it is a user count for an installation that
// may still be forwarded and was not counted for its day yet. It returns an
// error only when the record could not be handled and must be read again.
func (f *Forwarder) handle(ctx context.Context, r *provision.Record) error {
	if r.Event.Type != EventType {
		return nil
	}
	suppressed, err := f.o.Suppressor.Suppressed(ctx, r.InstallationID)
	if err != nil {
		return fmt.Errorf("forward %s: suppression list: %w", f.recipient, err)
	}
	if suppressed {
		f.o.Metrics.skip(f.recipient, "suppressed")
		return nil
	}
	used := r.Event.Time
	if used.IsZero() {
		used = r.ReceivedAt
	}
	day := used.UTC().Format(dayLayout)
	already, err := f.o.State.Sent(ctx, f.recipient, r.InstallationID, day)
	if err != nil {
		return fmt.Errorf("forward %s: sent markers: %w", f.recipient, err)
	}
	if already {
		f.o.Metrics.skip(f.recipient, "already_counted")
		return nil
	}
	c := &Count{
		Seq:            r.Seq,
		InstallationID: r.InstallationID,
		Region:         r.Region,
		Day:            day,
		Time:           used,
		Fields:         SelectFields(f.o.Manifest, f.recipient, r.Region, r.InstallationID, r.Event.Fields),
	}
	if f.tooOld(c) {
		return nil
	}
	_, err = f.deliver(ctx, c, 0)
	return err
}

// tooOld tells whether the count's day of use is older than the recipient
// accepts, and counts it if so. Nothing is marked: the count was not sent.
func (f *Forwarder) tooOld(c *Count) bool {
	a, ok := f.o.Sender.(maxAger)
	if !ok || f.o.Now().Sub(c.Time) <= a.MaxAge() {
		return false
	}
	f.o.Metrics.skip(f.recipient, "too_old")
	return true
}

// SelectFields returns the values that may go to the recipient: the items of
// a user_count event, and of the batch envelope, that the manifest declares
// for the recipient and the region. Everything else is left behind, whatever
// the event holds.
func SelectFields(m *manifest.Manifest, recipient, region, installationID string, fields map[string]any) map[string]any {
	out := make(map[string]any)
	for _, it := range m.ItemsFor(manifest.BatchEvent, recipient, region) {
		if it.ID == InstallationItem && installationID != "" {
			out[it.ID] = installationID
		}
	}
	for _, it := range m.ItemsFor(EventType, recipient, region) {
		if v, ok := fields[it.ID]; ok {
			out[it.ID] = v
		}
	}
	return out
}

// deliver sends c with retries and records the outcome: a sent marker on
// success, a dead letter when the attempts are exhausted or the error is
// permanent. prior counts attempts made before (a redriven dead letter). It
// reports whether c was delivered; an error means neither outcome could be
// recorded.
func (f *Forwarder) deliver(ctx context.Context, c *Count, prior int) (bool, error) {
	// The last line of defence: nothing undeclared leaves, even if a bug
	// upstream put it into the count.
	if v := f.o.Manifest.CheckRecipient(nil, 0, c.Fields, f.recipient); len(v) > 0 {
		f.o.Metrics.skip(f.recipient, "undeclared_field")
		f.log.Error("count held back: field not declared for recipient", "violation", v[0].String())
		return false, f.deadLetter(ctx, c, prior, fmt.Errorf("%s", v[0].String()), false)
	}
	attempt := prior
	_, err := wire.Retry(ctx, f.o.Retry.wire(func(_ int, wait time.Duration, err error) {
		f.o.Metrics.retry(f.recipient)
		f.mu.Lock()
		f.retried++
		f.mu.Unlock()
		f.log.Debug("retrying delivery", "attempt", attempt, "wait", wait, "err", err)
	}), func() (struct{}, error) {
		attempt++
		err := f.o.Sender.Send(ctx, c)
		if err != nil && ctx.Err() == nil {
			f.noteError(err)
		}
		return struct{}{}, err
	})
	if err == nil {
		now := f.o.Now()
		if err := f.o.State.MarkSent(context.WithoutCancel(ctx), f.recipient, c.InstallationID, c.Day, now); err != nil {
			return true, fmt.Errorf("forward %s: mark sent: %w", f.recipient, err)
		}
		f.noteSuccess(now)
		return true, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return false, f.deadLetter(ctx, c, attempt, err, wire.IsRetryable(err))
}

func (f *Forwarder) deadLetter(ctx context.Context, c *Count, attempts int, cause error, retryable bool) error {
	payload, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("forward %s: encode dead letter: %w", f.recipient, err)
	}
	dl := &DeadLetter{
		Recipient:      f.recipient,
		InstallationID: c.InstallationID,
		Day:            c.Day,
		Seq:            c.Seq,
		Count:          payload,
		Attempts:       attempts,
		Reason:         cause.Error(),
		Retryable:      retryable,
		CreatedAt:      f.o.Now().UTC(),
	}
	if err := f.o.State.AddDeadLetter(context.WithoutCancel(ctx), dl); err != nil {
		return fmt.Errorf("forward %s: save dead letter: %w", f.recipient, err)
	}
	f.mu.Lock()
	f.failed++
	f.mu.Unlock()
	f.o.Metrics.fail(f.recipient)
	f.refreshDeadLetters(ctx)
	f.log.Warn("count dead-lettered", "attempts", attempts, "retryable", retryable, "err", cause)
	return nil
}

// Redrive tries the dead letters of this recipient again, oldest first; with
// onlyRetryable it leaves those that failed permanently. A dead letter whose
// installation was suppressed since, or which was counted meanwhile, is
// dropped. Fields no longer declared for the recipient are removed first.
// It returns how many were delivered.
func (f *Forwarder) Redrive(ctx context.Context, onlyRetryable bool) (int, error) {
	f.mu.Lock()
	f.lastRedrive = f.o.Now()
	f.mu.Unlock()
	dls, err := f.o.State.DeadLetters(ctx, f.recipient, 1000)
	if err != nil {
		return 0, err
	}
	delivered := 0
	for _, dl := range dls {
		if onlyRetryable && !dl.Retryable {
			continue
		}
		var c Count
		if err := json.Unmarshal(dl.Count, &c); err != nil {
			return delivered, fmt.Errorf("forward %s: dead letter %d: %w", f.recipient, dl.ID, err)
		}
		suppressed, err := f.o.Suppressor.Suppressed(ctx, c.InstallationID)
		if err != nil {
			return delivered, err
		}
		sent, err := f.o.State.Sent(ctx, f.recipient, c.InstallationID, c.Day)
		if err != nil {
			return delivered, err
		}
		if !suppressed && !sent && !f.tooOld(&c) {
			// The manifest may have changed since: select again from what was kept.
			c.Fields = SelectFields(f.o.Manifest, f.recipient, c.Region, c.InstallationID, c.Fields)
			ok, err := f.deliver(ctx, &c, dl.Attempts)
			if err != nil {
				return delivered, err
			}
			if ok {
				delivered++
			}
		}
		// Delivered, dropped, or dead-lettered afresh: the old letter goes.
		if err := f.o.State.DeleteDeadLetter(context.WithoutCancel(ctx), f.recipient, dl.ID); err != nil {
			return delivered, err
		}
	}
	f.refreshDeadLetters(ctx)
	return delivered, nil
}

func (f *Forwarder) lastRedriveTime() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastRedrive
}

func (f *Forwarder) refreshDeadLetters(ctx context.Context) {
	if n, err := f.o.State.CountDeadLetters(context.WithoutCancel(ctx), f.recipient); err == nil {
		f.o.Metrics.deadLetters(f.recipient, n)
	}
}

func (f *Forwarder) noteSuccess(at time.Time) {
	f.mu.Lock()
	f.sent++
	f.lastSuccess = at
	f.mu.Unlock()
	f.o.Metrics.success(f.recipient, at)
}

func (f *Forwarder) noteError(err error) {
	f.mu.Lock()
	f.lastError = err.Error()
	f.lastErrorAt = f.o.Now()
	f.mu.Unlock()
}

// SuppressorFunc adapts a function to Suppressor.
type SuppressorFunc func(ctx context.Context, installationID string) (bool, error)

// Suppressed implements Suppressor.
func (f SuppressorFunc) Suppressed(ctx context.Context, installationID string) (bool, error) {
	return f(ctx, installationID)
}
