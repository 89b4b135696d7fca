// Package privacy honours the rights the data-provision terms give: erasure
// of everything held for an installation, with a receipt and an append-only
// audit log; export of everything held for it, grouped by manifest item;
// and retention, purging raw data once each item's retention_days have
// passed.
//
// The package holds the rules; a Store holds the rows. The embedded SQLite
// store implements Store in internal/sqlite/privacy.go, and the scale-out
// store can implement the same interface.
//
// The installation id is a 122-bit random secret known only to its device.
// Nothing here logs it or keeps it once an erasure is complete: the
// tombstone and the audit log hold its SHA-256 (IDHash), which cannot be
// reversed by guessing because the id is random, and which the person
// holding the id can recompute to check the audit log.
package privacy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/provisionhq/provision"
)

// Request sources.
const (
	SourceDevice   = "device"   // POST /v1/deletion from the agent
	SourceOperator = "operator" // provision privacy erase, or the admin API
)

// Request states, as POST /v1/deletion and `privacy status` report them.
const (
	StatusPending  = "pending"
	StatusComplete = "complete"
)

// Request is one erasure request. Once complete it is the receipt.
type Request struct {
	ID          string    `json:"request_id"`
	IDHash      string    `json:"installation_sha256"`
	Source      string    `json:"source"`
	Status      string    `json:"status"`
	RequestedAt time.Time `json:"requested_at"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
	Removed     *Removed  `json:"removed,omitempty"`
}

// Removed says what an erasure removed.
type Removed struct {
	// Events counts raw events removed, by event type.
	Events map[string]int64 `json:"events"`
	// Categories counts the stored values removed, by manifest category:
	// each field of each removed event is one value of its item's
	// category, and each removed event also removes one value of the
	// installation id's category (the id stored beside it).
	Categories map[string]int64 `json:"categories"`
	// Records counts the other rows linked to the installation that were
	// removed, by kind (for example forward_sent).
	Records map[string]int64 `json:"records"`
	// Owners lists every registered owner of installation data with what
	// the erasure did there (see Registry), recipients included.
	Owners []Outcome `json:"owners,omitempty"`
}

func newRemoved() *Removed {
	return &Removed{Events: map[string]int64{}, Categories: map[string]int64{}, Records: map[string]int64{}}
}

// Pending is an erasure that was begun but not completed (the process
// stopped half-way). The store holds the installation id of a pending
// erasure only until CompleteErasure, so that the erasure can be finished.
type Pending struct {
	Request        Request
	InstallationID string
}

// AuditEntry is one line of the append-only audit log. It says that an
// erasure happened, when, on whose request and how much it removed, never
// what was removed. Hash chains each entry to the one before, so a removed
// or altered entry breaks every later hash.
type AuditEntry struct {
	Seq         int64     `json:"seq"`
	RequestID   string    `json:"request_id"`
	IDHash      string    `json:"installation_sha256"`
	Source      string    `json:"source"`
	RequestedAt time.Time `json:"requested_at"`
	CompletedAt time.Time `json:"completed_at"`
	Removed     *Removed  `json:"removed"`
	Prev        string    `json:"prev"` // Hash of the previous entry, "" for the first
	Hash        string    `json:"hash"`
}

// LinkedRecord is one row other than a raw event that names the
// installation, as export shows it.
type LinkedRecord struct {
	Kind   string         `json:"kind"`
	Fields map[string]any `json:"fields"`
}

// Store is what the privacy operations need from the engine that holds the
// raw data. Every method must be safe for concurrent use, and each method
// that writes must keep its transaction short: ingest waits on the same
// engine.
type Store interface {
	// BeginErasure durably records, in one transaction, the tombstone of
	// r.IDHash and r as a pending request holding installationID. From
	// its commit on, the store refuses (silently drops) any new event or
	// linked row of that installation. When a request with r.ID exists it
	// stores nothing and returns that request.
	BeginErasure(ctx context.Context, r *Request, installationID string) (existing *Request, err error)
	// DeleteEvents deletes up to limit raw events of the installation and
	// returns them; fewer than limit means none are left.
	DeleteEvents(ctx context.Context, installationID string, limit int) ([]provision.Event, error)
	// DeleteLinked deletes every other row linked to the installation and
	// returns how many of each kind.
	DeleteLinked(ctx context.Context, installationID string) (map[string]int64, error)
	// CompleteErasure stores r (now complete) as the receipt, forgets the
	// installation id the pending request held, and appends e to the
	// audit log after sealing it with Seal — all in one transaction.
	CompleteErasure(ctx context.Context, r *Request, e *AuditEntry) error
	// PendingErasures returns up to limit requests begun but not complete.
	PendingErasures(ctx context.Context, limit int) ([]Pending, error)
	// Request returns the request with the id, or provision.ErrNotFound.
	Request(ctx context.Context, requestID string) (*Request, error)
	// Tombstoned reports whether an erasure of the installation with this
	// IDHash was ever begun.
	Tombstoned(ctx context.Context, idHash string) (bool, error)
	// Audit returns the audit log entries with Seq > after, in order.
	Audit(ctx context.Context, after int64, limit int) ([]AuditEntry, error)

	// InstallationEvents returns up to limit raw events of the
	// installation with Seq > after, in Seq order.
	InstallationEvents(ctx context.Context, installationID string, after int64, limit int) ([]provision.Record, error)
	// Linked returns the other rows linked to the installation.
	Linked(ctx context.Context, installationID string) ([]LinkedRecord, error)

	// PurgeEvents deletes up to limit raw events of the type whose event
	// time falls on a UTC day before the UTC day of before, and returns
	// how many it deleted.
	PurgeEvents(ctx context.Context, eventType string, before time.Time, limit int) (int64, error)
	// StripFields removes the items from the fields of up to limit events
	// of the type with Seq > afterSeq whose UTC day is in [from, before)
	// (by the UTC days of from and before; a zero from has no lower bound),
	// visiting them in Seq order, and returns the highest Seq it visited
	// (afterSeq when none) and how many events it visited; fewer than
	// limit means the range is done.
	StripFields(ctx context.Context, eventType string, items []string, from, before time.Time, afterSeq int64, limit int) (last int64, n int, err error)
	// RetentionMark returns how far the strip rule has been applied: every
	// event with Seq <= seq whose day is before through has been stripped.
	// Zero values when never.
	RetentionMark(ctx context.Context, rule string) (through time.Time, seq int64, err error)
	// SetRetentionMark records it.
	SetRetentionMark(ctx context.Context, rule string, through time.Time, seq int64) error
}

// IDHash is what the tombstone and the audit log hold instead of the
// installation id: the lowercase hex SHA-256 of the id as sent. Anyone who
// holds the id can recompute it (printf %s ID | sha256sum); nobody can
// recover the id from it, because the id is 122 random bits.
func IDHash(installationID string) string {
	sum := sha256.Sum256([]byte(installationID))
	return hex.EncodeToString(sum[:])
}

// AuditColumns are the columns of the audit table that ScanAuditEntry
// reads, in its order; every store keeps the audit log in this shape.
const AuditColumns = `seq, request_id, id_hash, source, requested_at, completed_at, removed, prev, hash`

// ScanAuditEntry builds an entry from one row of AuditColumns, where the
// times are Unix nanoseconds and removed is the receipt's JSON. scan is the
// row's Scan method of whichever driver the store uses.
func ScanAuditEntry(scan func(dest ...any) error) (AuditEntry, error) {
	var (
		e                    AuditEntry
		requested, completed int64
		removed              string
	)
	if err := scan(&e.Seq, &e.RequestID, &e.IDHash, &e.Source, &requested, &completed, &removed, &e.Prev, &e.Hash); err != nil {
		return e, err
	}
	e.RequestedAt = time.Unix(0, requested).UTC()
	e.CompletedAt = time.Unix(0, completed).UTC()
	e.Removed = new(Removed)
	if err := json.Unmarshal([]byte(removed), e.Removed); err != nil {
		return e, fmt.Errorf("audit entry %d: %w", e.Seq, err)
	}
	return e, nil
}
