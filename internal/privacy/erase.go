package privacy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
)

// InstallationItem is the manifest item of the installation id, carried in
// the batch envelope and stored beside every event.
const InstallationItem = "installation.id"

// Errors that callers test with errors.Is.
var (
	// ErrBadInstallationID means the id is not a valid installation id.
	ErrBadInstallationID = errors.New("not a valid installation id")
	// ErrBadRequestID means the request id is malformed.
	ErrBadRequestID = errors.New("request id must be 1 to 64 letters, digits, - or _")
	// ErrRequestConflict means the request id was used before for another
	// installation.
	ErrRequestConflict = errors.New("request id already used for another installation")
)

// DefaultChunk is how many events one erasure or purge transaction deletes.
const DefaultChunk = 500

// Options configure a Service. Store and Manifest are required.
type Options struct {
	Store    Store
	Manifest *manifest.Manifest
	Logger   *slog.Logger     // nil: discard; never given an installation id
	Now      func() time.Time // nil: time.Now
	Chunk    int              // events per transaction; default DefaultChunk
	// Owners are the places besides the Store's events and linked rows
	// that hold installation data; every erasure runs them and the
	// receipt lists each one's outcome. Nil: the Store alone.
	Owners *Registry
	// Erased, when set, is told the UTC days (YYYY-MM-DD) of the events an
	// erasure removed, so derived data of those days is recomputed (the
	// rollup refresh job). It is called after the erasure completed.
	Erased func(days []string)
	// Days, when set, is told durably of the days an erasure touches: it
	// holds them before anything is deleted (the days the Store's
	// InstallationDays names, when it is a DayFinder) and releases them,
	// with the days of the events removed, once the erasure completed.
	// The rollup refresh job recomputes released days; a crash in between
	// loses none.
	Days DayMarks
}

// DayMarks keep the days whose derived data an erasure request makes
// stale (rollup.Refresher).
type DayMarks interface {
	HoldDays(ctx context.Context, requestID string, days []string) error
	ReleaseDays(ctx context.Context, requestID string, days []string) error
}

// DayFinder is a Store that can tell, before deleting, the UTC days
// (YYYY-MM-DD) the installation's stored events fall on. A superset is
// fine: an extra day is only recomputed.
type DayFinder interface {
	InstallationDays(ctx context.Context, installationID string) ([]string, error)
}

// Service performs erasure and export, and answers whether an installation
// was erased. It is safe for concurrent use.
type Service struct {
	store Store
	m     *manifest.Manifest
	log   *slog.Logger
	now   func() time.Time
	chunk int

	owners *Registry
	erased func(days []string)
	days   DayMarks
	// notifier delivers the deletion notices erasures queue, when the
	// Store is a NoticeStore; without one recipients are told inside the
	// erasure.
	notifier *Notifier
}

// New checks the options and returns a service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Manifest == nil {
		return nil, errors.New("privacy: Store and Manifest are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Chunk <= 0 {
		o.Chunk = DefaultChunk
	}
	s := &Service{store: o.Store, m: o.Manifest, log: o.Logger, now: o.Now, chunk: o.Chunk, owners: o.Owners, erased: o.Erased, days: o.Days}
	if ns, ok := o.Store.(NoticeStore); ok {
		s.notifier = &Notifier{Store: ns, Owners: o.Owners, Logger: o.Logger, kick: make(chan struct{}, 1)}
	}
	return s, nil
}

// Notifier returns the job that delivers the deletion notices this
// service's erasures queue, or nil when the Store keeps no queue (the
// recipients are then told inside each erasure). Its Policy and Every may
// be set before it runs.
func (s *Service) Notifier() *Notifier { return s.notifier }

// CheckInstallationID returns ErrBadInstallationID unless id is a value
// the manifest's installation.id item accepts.
func (s *Service) CheckInstallationID(id string) error {
	it := s.m.Item(InstallationItem)
	if it == nil {
		if id == "" || len(id) > 64 {
			return ErrBadInstallationID
		}
		return nil
	}
	if v := s.m.CheckValue(nil, -1, it, id); len(v) > 0 {
		return fmt.Errorf("%w: %s", ErrBadInstallationID, v[0].Message)
	}
	return nil
}

// ValidRequestID reports whether id is 1 to 64 letters, digits, - or _:
// the rule of every id a client chooses.
func ValidRequestID(id string) bool { return manifest.ValidID(id) }

// NewRequestID returns a random request id for an operator's request.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "er-" + hex.EncodeToString(b[:])
}

// Erase removes every raw event and every other row linked to the
// installation and returns the receipt. The tombstone is committed first,
// so from then on nothing of the installation is stored, forwarded or
// counted again, even while the deletion proceeds. Erase is idempotent per
// request id: a repeated request returns the first receipt, or finishes
// the erasure if it was interrupted.
func (s *Service) Erase(ctx context.Context, installationID, requestID, source string) (*Request, error) {
	if err := s.CheckInstallationID(installationID); err != nil {
		return nil, err
	}
	if requestID == "" {
		requestID = NewRequestID()
	}
	if !ValidRequestID(requestID) {
		return nil, ErrBadRequestID
	}
	r := &Request{
		ID:          requestID,
		IDHash:      IDHash(installationID),
		Source:      source,
		Status:      StatusPending,
		RequestedAt: s.now().UTC(),
	}
	existing, err := s.store.BeginErasure(ctx, r, installationID)
	if err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	if existing != nil {
		if existing.IDHash != r.IDHash {
			return nil, ErrRequestConflict
		}
		if existing.Status == StatusComplete {
			return existing, s.overlayNotices(ctx, existing)
		}
		r = existing
	}
	if err := s.finish(ctx, r, installationID); err != nil {
		return nil, err
	}
	return r, nil
}

// finish deletes in chunks, then completes the request and appends the
// audit entry. r becomes the receipt.
func (s *Service) finish(ctx context.Context, r *Request, installationID string) error {
	removed := newRemoved()
	days := map[string]bool{}
	if s.days != nil {
		var held []string
		if df, ok := s.store.(DayFinder); ok {
			var err error
			if held, err = df.InstallationDays(ctx, installationID); err != nil {
				return fmt.Errorf("erase %s: days: %w", r.ID, err)
			}
		}
		if err := s.days.HoldDays(ctx, r.ID, held); err != nil {
			return fmt.Errorf("erase %s: hold days: %w", r.ID, err)
		}
	}
	installCategory := ""
	if it := s.m.Item(InstallationItem); it != nil {
		installCategory = it.Category
	}
	for {
		evs, err := s.store.DeleteEvents(ctx, installationID, s.chunk)
		if err != nil {
			return fmt.Errorf("erase %s: delete events: %w", r.ID, err)
		}
		for i := range evs {
			s.count(removed, &evs[i], installCategory)
			days[evs[i].Time.UTC().Format(time.DateOnly)] = true
		}
		if len(evs) < s.chunk {
			break
		}
	}
	linked, err := s.store.DeleteLinked(ctx, installationID)
	if err != nil {
		return fmt.Errorf("erase %s: delete linked rows: %w", r.ID, err)
	}
	for kind, n := range linked {
		removed.Records[kind] += n
	}
	queued := false
	if s.notifier != nil && s.owners != nil {
		var recipients []string
		for _, o := range s.owners.Owners() {
			if o.Engine == EngineRecipient && o.Notify != nil {
				recipients = append(recipients, o.Name)
			}
		}
		if len(recipients) > 0 {
			// Before the request completes (which forgets the id): a crash
			// in between finishes the erasure again and queues nothing twice.
			if err := s.notifier.Store.EnqueueNotices(ctx, r.ID, installationID, recipients, s.now().UTC()); err != nil {
				return fmt.Errorf("erase %s: queue notices: %w", r.ID, err)
			}
			queued = true
		}
	}
	if s.owners != nil {
		outcomes, err := s.owners.eraseOwners(ctx, installationID, s.now, removed, queued)
		if err != nil {
			return fmt.Errorf("erase %s: %w", r.ID, err)
		}
		removed.Owners = outcomes
	}
	if s.days != nil {
		// Everything is deleted: the days may be refreshed from now on. A
		// failure leaves the request pending, and Resume releases them.
		if err := s.days.ReleaseDays(ctx, r.ID, slices.Sorted(maps.Keys(days))); err != nil {
			return fmt.Errorf("erase %s: release days: %w", r.ID, err)
		}
	}
	r.Status = StatusComplete
	r.CompletedAt = s.now().UTC()
	r.Removed = removed
	e := &AuditEntry{
		RequestID: r.ID, IDHash: r.IDHash, Source: r.Source,
		RequestedAt: r.RequestedAt, CompletedAt: r.CompletedAt, Removed: removed,
	}
	if err := s.store.CompleteErasure(ctx, r, e); err != nil {
		return fmt.Errorf("erase %s: complete: %w", r.ID, err)
	}
	var events int64
	for _, n := range removed.Events {
		events += n
	}
	if s.erased != nil && len(days) > 0 {
		s.erased(slices.Sorted(maps.Keys(days)))
	}
	if queued {
		s.notifier.Kick()
	}
	s.log.Info("erasure complete", "request_id", r.ID, "source", r.Source, "events", events)
	return nil
}

// count adds one removed event to the receipt's tallies.
func (s *Service) count(removed *Removed, ev *provision.Event, installCategory string) {
	removed.Events[ev.Type]++
	if installCategory != "" {
		removed.Categories[installCategory]++
	}
	for id := range ev.Fields {
		cat := "undeclared"
		if it := s.m.Item(id); it != nil {
			cat = it.Category
		}
		removed.Categories[cat]++
	}
}

// Resume finishes erasures that were begun but not completed, for example
// because the process stopped half-way, and returns how many it finished.
func (s *Service) Resume(ctx context.Context) (int, error) {
	done := 0
	for {
		pending, err := s.store.PendingErasures(ctx, 100)
		if err != nil {
			return done, fmt.Errorf("resume erasures: %w", err)
		}
		for i := range pending {
			p := &pending[i]
			r := p.Request
			if err := s.finish(ctx, &r, p.InstallationID); err != nil {
				return done, err
			}
			done++
		}
		if len(pending) < 100 {
			return done, nil
		}
	}
}

// Status returns the request with the id (its receipt once complete), or
// an error wrapping provision.ErrNotFound.
func (s *Service) Status(ctx context.Context, requestID string) (*Request, error) {
	if !ValidRequestID(requestID) {
		return nil, ErrBadRequestID
	}
	r, err := s.store.Request(ctx, requestID)
	if err != nil {
		return nil, err
	}
	return r, s.overlayNotices(ctx, r)
}

// overlayNotices sets the state of the request's queued deletion notices
// on its receipt.
func (s *Service) overlayNotices(ctx context.Context, r *Request) error {
	ns, ok := s.store.(NoticeStore)
	if !ok {
		return nil
	}
	notices, err := ns.Notices(ctx, r.ID)
	if err != nil {
		return fmt.Errorf("status %s: notices: %w", r.ID, err)
	}
	withNotices(r, notices)
	return nil
}

// Erased reports whether an erasure of the installation was requested.
// Forwarders, rollup rebuilds and anything that replays the log consult it
// so that nothing of an erased installation comes back.
func (s *Service) Erased(ctx context.Context, installationID string) (bool, error) {
	return s.store.Tombstoned(ctx, IDHash(installationID))
}

// Suppressed is Erased under the name forward.Suppressor uses.
func (s *Service) Suppressed(ctx context.Context, installationID string) (bool, error) {
	return s.Erased(ctx, installationID)
}
