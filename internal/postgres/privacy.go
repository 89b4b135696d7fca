package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
	"github.com/provisionhq/provision/internal/privacy"
)

// PrivacyStore is privacy.Store on PostgreSQL; its tables and the trigger
// that refuses erased installations come from migration 0300_privacy.sql.
// The scale-out store holds no forwarding state, so erasure here removes
// events only; the NATS stream in front of it keeps submissions only for
// its own retention and is not edited.
type PrivacyStore struct{ s *Store }

var _ privacy.Store = (*PrivacyStore)(nil)

// NewPrivacyStore returns the privacy store of s.
func NewPrivacyStore(s *Store) *PrivacyStore { return &PrivacyStore{s: s} }

func pgWrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgres: %s: %w", op, classify(err))
}

// BeginErasure implements privacy.Store.
func (p *PrivacyStore) BeginErasure(ctx context.Context, r *privacy.Request, installationID string) (*privacy.Request, error) {
	var existing *privacy.Request
	err := pgx.BeginFunc(ctx, p.s.pool, func(tx pgx.Tx) error {
		got, err := pgRequest(ctx, tx, r.ID)
		if err == nil {
			existing = got
			return nil
		}
		if !errors.Is(err, provision.ErrNotFound) {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO privacy_tombstones (id_hash, erased_at) VALUES ($1, $2)
			ON CONFLICT (id_hash) DO NOTHING`, r.IDHash, r.RequestedAt); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO privacy_requests
			(request_id, id_hash, source, status, requested_at, pending_installation_id) VALUES ($1, $2, $3, $4, $5, $6)`,
			r.ID, r.IDHash, r.Source, r.Status, r.RequestedAt.UnixNano(), installationID)
		return err
	})
	return existing, pgWrap("begin erasure", err)
}

// DeleteEvents implements privacy.Store. It deletes whole batches of the
// installation, found by the narrow installation index of log_batches,
// until at least limit events are removed or none are left, and returns the
// events; the last call also deletes the installation's batch answers.
func (p *PrivacyStore) DeleteEvents(ctx context.Context, installationID string, limit int) ([]provision.Event, error) {
	var out []provision.Event
	err := pgx.BeginFunc(ctx, p.s.pool, func(tx pgx.Tx) error {
		out = out[:0]
		for len(out) < limit {
			rows, err := tx.Query(ctx, `DELETE FROM log_batches WHERE seq_end IN
				(SELECT seq_end FROM log_batches WHERE installation_id = $1 LIMIT 64) AND installation_id = $1
				RETURNING payload`, installationID)
			if err != nil {
				return err
			}
			var payload []byte
			n := 0
			if _, err := pgx.ForEachRow(rows, []any{&payload}, func() error {
				n++
				entries, err := batchcodec.Decode(payload)
				if err != nil {
					return err
				}
				for i := range entries {
					out = append(out, entries[i].Event)
				}
				return nil
			}); err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		if len(out) < limit {
			_, err := tx.Exec(ctx, `DELETE FROM batch_keys WHERE installation_id = $1`, installationID)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, pgWrap("delete events", err)
	}
	return out, nil
}

// DeleteLinked implements privacy.Store: the scale-out store keeps no other
// rows that name an installation.
func (p *PrivacyStore) DeleteLinked(context.Context, string) (map[string]int64, error) {
	return map[string]int64{}, nil
}

// CompleteErasure implements privacy.Store.
func (p *PrivacyStore) CompleteErasure(ctx context.Context, r *privacy.Request, e *privacy.AuditEntry) error {
	removed, err := json.Marshal(r.Removed)
	if err != nil {
		return fmt.Errorf("postgres: complete erasure: %w", err)
	}
	err = pgx.BeginFunc(ctx, p.s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE privacy_requests SET status = $1, completed_at = $2, removed = $3,
			pending_installation_id = NULL WHERE request_id = $4 AND status = $5`,
			r.Status, r.CompletedAt.UnixNano(), string(removed), r.ID, privacy.StatusPending)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // completed concurrently: one audit entry only
		}
		// Serialise appends to the chain.
		if _, err := tx.Exec(ctx, `LOCK TABLE privacy_audit IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		return privacy.AppendAudit(e, string(removed), func() (seq int64, hash string, err error) {
			err = tx.QueryRow(ctx, `SELECT seq, hash FROM privacy_audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
			if errors.Is(err, pgx.ErrNoRows) {
				return 0, "", nil
			}
			return seq, hash, err
		}, func(row ...any) error {
			_, err := tx.Exec(ctx, `INSERT INTO privacy_audit (`+privacy.AuditColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, row...)
			return err
		})
	})
	if err != nil {
		return pgWrap("complete erasure", err)
	}
	// The deleted rows stay as dead tuples until VACUUM: it runs after
	// the erasure, once for any number completing meanwhile.
	p.s.requestVacuum()
	return nil
}

// PendingErasures implements privacy.Store.
func (p *PrivacyStore) PendingErasures(ctx context.Context, limit int) ([]privacy.Pending, error) {
	rows, err := p.s.pool.Query(ctx, `SELECT `+privacy.PendingColumns+`
		FROM privacy_requests WHERE status = $1 ORDER BY requested_at LIMIT $2`, privacy.StatusPending, limit)
	if err != nil {
		return nil, pgWrap("pending erasures", err)
	}
	defer rows.Close()
	out, err := privacy.ReadPending(rows)
	return out, pgWrap("pending erasures", err)
}

type pgQueryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pgRequest(ctx context.Context, q pgQueryer, id string) (*privacy.Request, error) {
	r, err := privacy.ScanRequest(q.QueryRow(ctx, `SELECT `+privacy.RequestColumns+`
		FROM privacy_requests WHERE request_id = $1`, id).Scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("erasure request %q: %w", id, provision.ErrNotFound)
	}
	return r, err
}

// Request implements privacy.Store.
func (p *PrivacyStore) Request(ctx context.Context, requestID string) (*privacy.Request, error) {
	r, err := pgRequest(ctx, p.s.pool, requestID)
	if err != nil && !errors.Is(err, provision.ErrNotFound) {
		return nil, pgWrap("erasure request", err)
	}
	return r, err
}

// Tombstoned implements privacy.Store.
func (p *PrivacyStore) Tombstoned(ctx context.Context, idHash string) (bool, error) {
	var ok bool
	err := p.s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM privacy_tombstones WHERE id_hash = $1)`, idHash).Scan(&ok)
	return ok, pgWrap("tombstoned", err)
}

// Audit implements privacy.Store.
func (p *PrivacyStore) Audit(ctx context.Context, after int64, limit int) ([]privacy.AuditEntry, error) {
	rows, err := p.s.pool.Query(ctx, `SELECT `+privacy.AuditColumns+`
		FROM privacy_audit WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, pgWrap("audit", err)
	}
	defer rows.Close()
	out, err := privacy.ReadAudit(rows)
	return out, pgWrap("audit", err)
}

// InstallationEvents implements privacy.Store.
func (p *PrivacyStore) InstallationEvents(ctx context.Context, installationID string, after int64, limit int) ([]provision.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := p.s.pool.Query(ctx, `SELECT `+batchColumns+` FROM log_batches
		WHERE installation_id = $1 AND seq_end > $2 ORDER BY seq_end`, installationID, after)
	if err != nil {
		return nil, pgWrap("installation events", err)
	}
	out, err := readBatches(rows, after, limit)
	return out, pgWrap("installation events", err)
}

// Linked implements privacy.Store: there are no other linked rows.
func (p *PrivacyStore) Linked(context.Context, string) ([]privacy.LinkedRecord, error) {
	return nil, nil
}

// PurgeEvents implements privacy.Store. Batches that may hold such events
// are picked by their oldest event day and the types they hold; each is
// rewritten without them, or deleted when nothing is left. It stops once at
// least limit events are removed.
func (p *PrivacyStore) PurgeEvents(ctx context.Context, eventType string, before time.Time, limit int) (int64, error) {
	cutoff := batchcodec.Day(before)
	var pass *batchcodec.Purge
	err := p.rewriteBatches(ctx, `day_min < $2 AND strpos(types, $3) > 0`, []any{cutoff, batchcodec.TypeToken(eventType)},
		func() { pass = batchcodec.NewPurge(eventType, cutoff, limit) },
		func(b *batchcodec.Stored) (bool, bool) { return pass.Visit(b) })
	if err != nil {
		return 0, pgWrap("purge events", err)
	}
	return pass.Removed, nil
}

// rewriteBatches visits, in log order, the batches matching where (on
// log_batches' columns, with its arguments from $2 on), lets visit change
// their entries and writes back those it changed: rewritten, or deleted
// when empty. visit returns whether it changed the batch and whether to go
// on. It runs in one transaction; reset runs at each attempt of it.
func (p *PrivacyStore) rewriteBatches(ctx context.Context, where string, args []any, reset func(), visit func(*batchcodec.Stored) (changed, more bool)) error {
	return pgx.BeginFunc(ctx, p.s.pool, func(tx pgx.Tx) error {
		reset()
		page := func(after int64) ([]*batchcodec.Stored, error) {
			rows, err := tx.Query(ctx, `SELECT `+batchColumns+` FROM log_batches WHERE seq_end > $1 AND `+where+`
				ORDER BY seq_end LIMIT `+strconv.Itoa(batchcodec.RewritePage)+` FOR UPDATE`, append([]any{after}, args...)...)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			return batchcodec.ScanAll(rows, func() (*batchcodec.Stored, error) { return scanBatch(rows) })
		}
		write := func(b *batchcodec.Stored) error { return writeBack(ctx, tx, b) }
		return batchcodec.Rewrite(page, write, visit)
	})
}

// writeBack stores a batch whose entries changed, or deletes it when none
// is left. Its positions do not move. received_at lets PostgreSQL go to the
// batch's partition only.
func writeBack(ctx context.Context, tx pgx.Tx, b *batchcodec.Stored) error {
	at := b.Head.ReceivedAt.Truncate(time.Microsecond)
	if len(b.Entries) == 0 {
		_, err := tx.Exec(ctx, `DELETE FROM log_batches WHERE seq_end = $1 AND received_at = $2`, b.End, at)
		return err
	}
	payload, sum, err := b.Rewritten()
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE log_batches SET events = $1, day_min = $2, day_max = $3, types = $4, payload = $5
		WHERE seq_end = $6 AND received_at = $7`, len(b.Entries), sum.DayMin, sum.DayMax, sum.Types, payload, b.End, at)
	return err
}

// StripFields implements privacy.Store.
func (p *PrivacyStore) StripFields(ctx context.Context, eventType string, items []string, from, before time.Time, afterSeq int64, limit int) (int64, int, error) {
	if len(items) == 0 {
		return afterSeq, 0, errors.New("postgres: strip fields: no items")
	}
	lo := int64(math.MinInt32)
	if !from.IsZero() {
		lo = batchcodec.Day(from)
	}
	hi := batchcodec.Day(before)
	var pass *batchcodec.Strip
	err := p.rewriteBatches(ctx, `seq_end > $2 AND day_min < $3 AND day_max >= $4 AND strpos(types, $5) > 0`,
		[]any{afterSeq, hi, lo, batchcodec.TypeToken(eventType)},
		func() {
			pass = batchcodec.NewStrip(eventType, items, lo, hi, afterSeq, limit)
		},
		func(b *batchcodec.Stored) (bool, bool) {
			return pass.Visit(b.Head.First, b.Entries)
		})
	if err != nil {
		return afterSeq, 0, pgWrap("strip fields", err)
	}
	return pass.Last, pass.Visited, nil
}

// RetentionMark implements privacy.Store.
func (p *PrivacyStore) RetentionMark(ctx context.Context, rule string) (time.Time, int64, error) {
	var (
		through time.Time
		seq     int64
	)
	err := p.s.pool.QueryRow(ctx, `SELECT through, seq FROM privacy_retention WHERE rule = $1`, rule).Scan(&through, &seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, 0, nil
	}
	if err != nil {
		return time.Time{}, 0, pgWrap("retention mark", err)
	}
	return through.UTC(), seq, nil
}

// SetRetentionMark implements privacy.Store.
func (p *PrivacyStore) SetRetentionMark(ctx context.Context, rule string, through time.Time, seq int64) error {
	_, err := p.s.pool.Exec(ctx, `INSERT INTO privacy_retention (rule, through, seq) VALUES ($1, $2, $3)
		ON CONFLICT (rule) DO UPDATE SET through = excluded.through, seq = excluded.seq`, rule, through, seq)
	return pgWrap("set retention mark", err)
}
