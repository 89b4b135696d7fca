package backend

import (
	"context"
	"log/slog"
	"time"

	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/rollup"
)

// Longest is the longest retention of any item of the manifest: derived
// data (rollup cells, certificates, dead letters) is kept no longer.
func Longest(m *manifest.Manifest) time.Duration {
	var longest time.Duration
	for _, it := range m.Items {
		longest = max(longest, it.Retention())
	}
	return longest
}

// PrivacyOwners registers every place of the backend that can hold data
// of an installation with the owner that erases it and applies its
// retention. Every table of each store and every stream must be here:
// TestEveryTableHasAnOwner enumerates the schemas and fails otherwise.
func (b *Backend) PrivacyOwners(m *manifest.Manifest) (*privacy.Registry, error) {
	r := new(privacy.Registry)
	engine := privacy.EngineSQLite
	if b.Engine != SQLite {
		engine = privacy.EnginePostgres
	}
	longest := Longest(m)
	cutoff := func(now time.Time) string { return now.UTC().Add(-longest).Format(time.DateOnly) }
	var dropCells func(context.Context, time.Time) (int64, error)
	if ds, ok := b.Rollups.(rollup.DayStore); ok {
		dropCells = func(ctx context.Context, now time.Time) (int64, error) { return ds.DropBefore(ctx, cutoff(now)) }
	}
	var expireDead func(context.Context, time.Time) (int64, error)
	if ex, ok := b.Forward.(forward.DeadLetterExpirer); ok {
		expireDead = func(ctx context.Context, now time.Time) (int64, error) {
			n, err := ex.ExpireDeadLetters(ctx, cutoff(now))
			return int64(n), err
		}
	}
	forget := func(ctx context.Context, id string) (int64, error) { return -1, b.Forward.Forget(ctx, id) }
	none := "holds no installation data"
	owners := []privacy.Owner{
		{Name: "log_batches", Holds: "accepted batches: the installation id and the events, compressed together", Names: true,
			Via: "privacy store DeleteEvents", Retention: "per manifest item (privacy.Retention)"},
		{Name: "batch_keys", Holds: "batch ids per installation with the coded answer for resends", Names: true,
			Via: "privacy store DeleteEvents", Retention: "with the batch's events"},
		{Name: "checkpoints", Holds: "consumer positions", Retention: none},
		{Name: "schema_migrations", Holds: "applied migrations", Retention: none},
		{Name: "health_probe", Holds: "the readiness probe's last write: a time and random padding", Retention: none},
		{Name: "rollup_checkpoints", Holds: "rollup consumer positions", Retention: none},
		{Name: "rollup_key", Holds: "the key of the sketches' hashes", Retention: none},
		{Name: "rollup_cells", Holds: "per-day counters, dimension values and keyed-hash sketches", Names: true,
			Via:       "job:rollup refresh recomputes the erased events' days from the log",
			Retention: "cells of days older than the manifest's longest retention are dropped", Retain: dropCells},
		{Name: "rollup_certs", Holds: "certificates seen by the threat views (DER)",
			Retention: "dropped with rollup_cells' pass once expired longer than the longest retention"},
		{Name: "forward_sent", Holds: "installation counted per recipient and day", Names: true,
			Erase: forget, Retention: "7 days (forwarder PruneSent)"},
		{Name: "forward_dead_letters", Holds: "undelivered counts with the installation id", Names: true,
			Erase: forget, Retention: "days older than the longest retention expire", Retain: expireDead},
		{Name: "privacy_tombstones", Holds: "SHA-256 of erased ids", Retention: "permanent (hash only)"},
		{Name: "privacy_requests", Holds: "receipts; a pending request holds the id", Names: true,
			Via: "privacy store CompleteErasure clears the id", Retention: "permanent (hash only once complete)"},
		{Name: "privacy_audit", Holds: "hash-chained audit log", Retention: "permanent (hash only)"},
		{Name: "privacy_retention", Holds: "retention marks", Retention: none},
		{Name: "privacy_notices", Holds: "recipients' deletion notices; a pending one holds the installation id the recipient deletes", Names: true,
			Via:       "job:the notices job sends it to the recipient and clears the id once confirmed",
			Retention: "pending until the recipient confirms (retried without end); then request id, recipient and time only, permanent"},
		{Name: "rollup_refresh", Holds: "days whose rollups an erasure made stale, by request id", Retention: "deleted by the rollup refresh pass"},
	}
	if engine == privacy.EnginePostgres {
		owners = append(owners, privacy.Owner{Name: "log_head", Holds: "the log's head position", Retention: none})
		sm := privacy.Owner{Name: "stream_messages", Holds: "SHA-256 of the installation id of each JetStream message the workers are done with, and its sequence",
			Names: true, Via: "the submission stream's owner deletes the installation's messages and their rows",
			Retention: "rows of messages the stream no longer holds are deleted"}
		if b.NATS != nil {
			sm.Retain = func(ctx context.Context, _ time.Time) (int64, error) {
				first, err := b.NATS.FirstSeq(ctx)
				if err != nil {
					return 0, err
				}
				return b.Postgres.ForgetStreamMessagesBefore(ctx, first)
			}
		}
		owners = append(owners, sm)
	}
	for i := range owners {
		owners[i].Engine = engine
	}
	if b.NATS != nil {
		streams := b.NATS.Streams()
		owners = append(owners,
			privacy.Owner{Engine: privacy.EngineJetStream, Name: streams[0],
				Holds: "submissions on their way to PostgreSQL, with the installation id", Names: true,
				Erase: b.eraseSubmissions, Retention: "the stream's max-age"},
			privacy.Owner{Engine: privacy.EngineJetStream, Name: streams[1],
				Holds: "submissions workers could not store", Names: true,
				Erase: b.NATS.EraseDeadLetters, Retention: "the stream's max-age"})
	}
	if err := r.Register(owners...); err != nil {
		return nil, err
	}
	return r, nil
}

// eraseSubmissions deletes the installation's messages from the submission
// stream with secure erase: those the workers recorded in stream_messages,
// by sequence, and those after the workers' acknowledgement floor, which
// may not be recorded yet, by reading that tail. A message a worker
// receives later is refused by the tombstone and deleted by the worker.
func (b *Backend) eraseSubmissions(ctx context.Context, installationID string) (int64, error) {
	seqs, err := b.Postgres.StreamMessages(ctx, privacy.IDHash(installationID))
	if err != nil {
		return 0, err
	}
	n, err := b.NATS.EraseMsgs(ctx, seqs)
	if err != nil {
		return n, err
	}
	if err := b.Postgres.ForgetStreamMessages(ctx, seqs); err != nil {
		return n, err
	}
	m, err := b.NATS.EraseUnconsumed(ctx, installationID)
	return n + m, err
}

// Refresher returns the job that recomputes the rollups of the days
// erasures touched, or nil when the rollup store cannot replace days.
func (b *Backend) Refresher(logger *slog.Logger) *rollup.Refresher {
	ds, ok := b.Rollups.(rollup.DayStore)
	if !ok {
		return nil
	}
	f := &rollup.Refresher{Log: b.Stored, Store: ds, Logger: logger}
	// The marks live in the store, so a crash between an erasure and the
	// pass that refreshes its days still refreshes them.
	if ms, ok := b.Rollups.(rollup.MarkStore); ok {
		f.Marks = ms
	}
	return f
}

// PrivacyService builds the one privacy service of a command over the
// backend: its Store, every owner of the backend plus extra (recipients),
// and the rollup refresher that erasures hold and release their days with
// (nil: none).
func (b *Backend) PrivacyService(m *manifest.Manifest, logger *slog.Logger, refresh *rollup.Refresher, extra ...privacy.Owner) (*privacy.Service, *privacy.Registry, error) {
	owners, err := b.PrivacyOwners(m)
	if err != nil {
		return nil, nil, err
	}
	if err := owners.Register(extra...); err != nil {
		return nil, nil, err
	}
	o := privacy.Options{Store: b.Privacy, Manifest: m, Logger: logger, Owners: owners}
	if refresh != nil {
		o.Days = refresh
	}
	svc, err := privacy.New(o)
	if err != nil {
		return nil, nil, err
	}
	return svc, owners, nil
}
