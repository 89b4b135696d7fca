package privacy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Engines an Owner's place lives in.
const (
	EngineSQLite    = "sqlite"
	EnginePostgres  = "postgres"
	EngineJetStream = "jetstream"
	EngineDevice    = "device"
	EngineRecipient = "recipient"
)

// Owner is the one party answerable for one copy of installation data: a
// table, an index, a stream, a device file, a recipient. Every place that
// can hold anything of an installation is registered with an Owner that
// says how the installation is erased from it and how retention applies,
// so that a new copy cannot be added without saying so: the schema tests
// enumerate every backend and fail on a table or stream nobody owns.
type Owner struct {
	Engine string // one of the Engine constants
	Name   string // the table, stream, file or recipient
	// Holds says what the place keeps, for the receipt and the docs.
	Holds string
	// Names says whether the place can hold the installation id, a value
	// of its events or something derived from them. A place that never
	// does (a checkpoint) is still registered, with Names false.
	Names bool
	// Erase removes everything of the installation from the place and
	// returns how many records went (-1 when the engine cannot tell). Nil
	// when Via says who erases it instead, or when Names is false.
	Erase func(ctx context.Context, installationID string) (int64, error)
	// Notify, for a recipient, asks it to delete what it received and
	// returns when it confirmed, with the time it gives.
	Notify func(ctx context.Context, installationID string) (time.Time, error)
	// Via names what erases the place when Erase is nil: the Store's
	// DeleteEvents or DeleteLinked; "job:" and the job that erases it
	// shortly after; "expires:" and how the data ages out unedited.
	Via string
	// Retention says how retention applies to the place.
	Retention string
	// Retain runs the place's retention at now and returns how many
	// records went; nil when Retention names another job.
	Retain func(ctx context.Context, now time.Time) (int64, error)
}

// Key is "engine:name", the owner's identity in a Registry.
func (o *Owner) Key() string { return o.Engine + ":" + o.Name }

// Outcome is what erasure did at one owner, as the receipt lists it.
type Outcome struct {
	Owner   string    `json:"owner"` // Owner.Key
	Status  string    `json:"status"`
	Removed int64     `json:"removed,omitempty"`
	At      time.Time `json:"at,omitzero"`
	Detail  string    `json:"detail,omitempty"`
}

// Outcome statuses.
const (
	OutcomeErased    = "erased"     // Erase ran and succeeded
	OutcomeVia       = "erased_via" // erased by Via, in the same erasure
	OutcomeNothing   = "holds_none" // the place never names an installation
	OutcomeScheduled = "scheduled"  // erased by a job shortly after (Via)
	OutcomeConfirmed = "confirmed"  // a recipient confirmed the deletion
	OutcomeExpires   = "expires"    // not edited; the data ages out (Via says when)
	// OutcomeNoticePending: the recipient's deletion notice is queued or
	// being retried (Detail says how far); the receipt shows
	// OutcomeConfirmed once it confirmed.
	OutcomeNoticePending = "notice_pending"
)

// Registry holds the owners of one deployment. It is safe for concurrent
// use.
type Registry struct {
	mu     sync.Mutex
	owners []*Owner
}

// Register adds owners; an owner already registered under the same Key,
// an unknown engine or a naming owner that says neither Erase nor Via is
// an error.
func (r *Registry) Register(owners ...Owner) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range owners {
		o := owners[i]
		switch o.Engine {
		case EngineSQLite, EnginePostgres, EngineJetStream, EngineDevice, EngineRecipient:
		default:
			return fmt.Errorf("privacy: owner %s: unknown engine %q", o.Name, o.Engine)
		}
		if o.Name == "" || o.Retention == "" {
			return fmt.Errorf("privacy: owner %s: needs a name and a retention", o.Key())
		}
		if o.Names && o.Erase == nil && o.Notify == nil && o.Via == "" {
			return fmt.Errorf("privacy: owner %s holds installation data but says nothing of its erasure", o.Key())
		}
		if slices.ContainsFunc(r.owners, func(p *Owner) bool { return p.Key() == o.Key() }) {
			return fmt.Errorf("privacy: owner %s registered twice", o.Key())
		}
		r.owners = append(r.owners, &o)
	}
	return nil
}

// Owners returns the owners, ordered by Key.
func (r *Registry) Owners() []Owner {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Owner, len(r.owners))
	for i, o := range r.owners {
		out[i] = *o
	}
	slices.SortFunc(out, func(a, b Owner) int { return strings.Compare(a.Key(), b.Key()) })
	return out
}

// Unowned returns the names among places of the engine that no owner
// holds. The schema tests call it with every table or stream they find.
func (r *Registry) Unowned(engine string, places []string) []string {
	owned := map[string]bool{}
	for _, o := range r.Owners() {
		if o.Engine == engine {
			owned[o.Name] = true
		}
	}
	var out []string
	for _, p := range places {
		if !owned[p] {
			out = append(out, p)
		}
	}
	return out
}

// eraseOwners runs every owner's Erase for the installation and returns
// the outcomes of all owners. An owner that fails stops the erasure: the
// request stays pending (the tombstone already protects the data) and the
// next Resume runs every owner again, which each must allow.
//
// With queued, recipients are not called: their notices were queued in the
// store and the Notifier delivers them, so their outcome is pending.
func (r *Registry) eraseOwners(ctx context.Context, installationID string, now func() time.Time, removed *Removed, queued bool) ([]Outcome, error) {
	var outcomes []Outcome
	var errs []error
	for _, o := range r.Owners() {
		oc := Outcome{Owner: o.Key()}
		switch {
		case o.Notify != nil && queued:
			oc.Status, oc.Detail = OutcomeNoticePending, "queued"
		case o.Notify != nil:
			at, err := o.Notify(ctx, installationID)
			if err != nil {
				errs = append(errs, fmt.Errorf("recipient %s: %w", o.Key(), err))
				continue
			}
			oc.Status, oc.At = OutcomeConfirmed, at.UTC()
		case o.Erase != nil:
			n, err := o.Erase(ctx, installationID)
			if err != nil {
				errs = append(errs, fmt.Errorf("owner %s: %w", o.Key(), err))
				continue
			}
			oc.Status, oc.Removed, oc.At = OutcomeErased, n, now().UTC()
		case !o.Names:
			oc.Status = OutcomeNothing
		case strings.HasPrefix(o.Via, "expires:"):
			oc.Status, oc.Detail = OutcomeExpires, strings.TrimPrefix(o.Via, "expires:")
		case strings.HasPrefix(o.Via, "job:"):
			oc.Status, oc.Detail = OutcomeScheduled, strings.TrimPrefix(o.Via, "job:")
		default:
			oc.Status, oc.Detail, oc.At = OutcomeVia, o.Via, now().UTC()
			if removed != nil {
				oc.Removed = removed.Records[o.Name]
			}
		}
		outcomes = append(outcomes, oc)
	}
	return outcomes, errors.Join(errs...)
}

// RetainOwners runs every owner's Retain at now and returns how many
// records went, by owner Key.
func (r *Registry) RetainOwners(ctx context.Context, now time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	var errs []error
	for _, o := range r.Owners() {
		if o.Retain == nil {
			continue
		}
		n, err := o.Retain(ctx, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("retention of %s: %w", o.Key(), err))
			continue
		}
		out[o.Key()] = n
	}
	return out, errors.Join(errs...)
}
