package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provisionhq/provision"
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

// DeleteEvents implements privacy.Store.
func (p *PrivacyStore) DeleteEvents(ctx context.Context, installationID string, limit int) ([]provision.Event, error) {
	rows, err := p.s.pool.Query(ctx, `DELETE FROM events WHERE seq IN
		(SELECT seq FROM events WHERE installation_id = $1 LIMIT $2)
		RETURNING event_id, event_type, event_time, fields`, installationID, limit)
	if err != nil {
		return nil, pgWrap("delete events", err)
	}
	defer rows.Close()
	var out []provision.Event
	for rows.Next() {
		var (
			ev     provision.Event
			fields []byte
		)
		if err := rows.Scan(&ev.ID, &ev.Type, &ev.Time, &fields); err != nil {
			return nil, pgWrap("delete events", err)
		}
		if err := json.Unmarshal(fields, &ev.Fields); err != nil {
			return nil, fmt.Errorf("postgres: delete events: fields: %w", err)
		}
		out = append(out, ev)
	}
	return out, pgWrap("delete events", rows.Err())
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
		var (
			last int64
			prev string
		)
		err = tx.QueryRow(ctx, `SELECT seq, hash FROM privacy_audit ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		e.Seq = last + 1
		if err := privacy.Seal(prev, e); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO privacy_audit
			(seq, request_id, id_hash, source, requested_at, completed_at, removed, prev, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			e.Seq, e.RequestID, e.IDHash, e.Source, e.RequestedAt.UnixNano(), e.CompletedAt.UnixNano(),
			string(removed), e.Prev, e.Hash)
		return err
	})
	return pgWrap("complete erasure", err)
}

// PendingErasures implements privacy.Store.
func (p *PrivacyStore) PendingErasures(ctx context.Context, limit int) ([]privacy.Pending, error) {
	rows, err := p.s.pool.Query(ctx, `SELECT request_id, id_hash, source, status, requested_at, pending_installation_id
		FROM privacy_requests WHERE status = $1 ORDER BY requested_at LIMIT $2`, privacy.StatusPending, limit)
	if err != nil {
		return nil, pgWrap("pending erasures", err)
	}
	defer rows.Close()
	var out []privacy.Pending
	for rows.Next() {
		var (
			pe        privacy.Pending
			requested int64
			id        *string
		)
		if err := rows.Scan(&pe.Request.ID, &pe.Request.IDHash, &pe.Request.Source, &pe.Request.Status, &requested, &id); err != nil {
			return nil, pgWrap("pending erasures", err)
		}
		pe.Request.RequestedAt = time.Unix(0, requested).UTC()
		if id != nil {
			pe.InstallationID = *id
		}
		out = append(out, pe)
	}
	return out, pgWrap("pending erasures", rows.Err())
}

type pgQueryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pgRequest(ctx context.Context, q pgQueryer, id string) (*privacy.Request, error) {
	var (
		r                    privacy.Request
		requested, completed int64
		removed              string
	)
	err := q.QueryRow(ctx, `SELECT request_id, id_hash, source, status, requested_at, completed_at, removed
		FROM privacy_requests WHERE request_id = $1`, id).
		Scan(&r.ID, &r.IDHash, &r.Source, &r.Status, &requested, &completed, &removed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("erasure request %q: %w", id, provision.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	r.RequestedAt = time.Unix(0, requested).UTC()
	if completed != 0 {
		r.CompletedAt = time.Unix(0, completed).UTC()
	}
	if removed != "" {
		r.Removed = new(privacy.Removed)
		if err := json.Unmarshal([]byte(removed), r.Removed); err != nil {
			return nil, fmt.Errorf("erasure request %q: receipt: %w", id, err)
		}
	}
	return &r, nil
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
	var out []privacy.AuditEntry
	for rows.Next() {
		e, err := privacy.ScanAuditEntry(rows.Scan)
		if err != nil {
			return nil, pgWrap("audit", err)
		}
		out = append(out, e)
	}
	return out, pgWrap("audit", rows.Err())
}

// InstallationEvents implements privacy.Store.
func (p *PrivacyStore) InstallationEvents(ctx context.Context, installationID string, after int64, limit int) ([]provision.Record, error) {
	rows, err := p.s.pool.Query(ctx, `
		SELECT seq, received_at, batch_id, installation_id, region, country,
		       subdivision, event_id, event_type, event_time, fields
		FROM events WHERE installation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, installationID, after, limit)
	if err != nil {
		return nil, pgWrap("installation events", err)
	}
	defer rows.Close()
	var out []provision.Record
	for rows.Next() {
		var r provision.Record
		var fields []byte
		if err := rows.Scan(&r.Seq, &r.ReceivedAt, &r.BatchID, &r.InstallationID, &r.Region, &r.Country,
			&r.Subdivision, &r.Event.ID, &r.Event.Type, &r.Event.Time, &fields); err != nil {
			return nil, pgWrap("installation events", err)
		}
		if err := json.Unmarshal(fields, &r.Event.Fields); err != nil {
			return nil, fmt.Errorf("postgres: installation events: seq %d: %w", r.Seq, err)
		}
		r.ReceivedAt = r.ReceivedAt.UTC()
		r.Event.Time = r.Event.Time.UTC()
		out = append(out, r)
	}
	return out, pgWrap("installation events", rows.Err())
}

// Linked implements privacy.Store: there are no other linked rows.
func (p *PrivacyStore) Linked(context.Context, string) ([]privacy.LinkedRecord, error) {
	return nil, nil
}

// utcMidnight is the start of t's UTC day: retention counts whole days.
func utcMidnight(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// PurgeEvents implements privacy.Store.
func (p *PrivacyStore) PurgeEvents(ctx context.Context, eventType string, before time.Time, limit int) (int64, error) {
	tag, err := p.s.pool.Exec(ctx, `DELETE FROM events WHERE seq IN
		(SELECT seq FROM events WHERE event_type = $1 AND event_time < $2 LIMIT $3)`,
		eventType, utcMidnight(before), limit)
	if err != nil {
		return 0, pgWrap("purge events", err)
	}
	return tag.RowsAffected(), nil
}

// StripFields implements privacy.Store.
func (p *PrivacyStore) StripFields(ctx context.Context, eventType string, items []string, from, before time.Time, afterSeq int64, limit int) (int64, int, error) {
	if len(items) == 0 {
		return afterSeq, 0, errors.New("postgres: strip fields: no items")
	}
	set := `fields = fields - $1::text[]`
	for _, it := range items {
		switch it {
		case provision.ItemCountry:
			set += `, country = ''`
		case provision.ItemSubdivision:
			set += `, subdivision = ''`
		}
	}
	lower := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	if !from.IsZero() {
		lower = utcMidnight(from)
	}
	rows, err := p.s.pool.Query(ctx, `UPDATE events SET `+set+` WHERE seq IN
		(SELECT seq FROM events WHERE event_type = $2 AND event_time >= $3 AND event_time < $4 AND seq > $5
		 ORDER BY seq LIMIT $6) RETURNING seq`,
		items, eventType, lower, utcMidnight(before), afterSeq, limit)
	if err != nil {
		return afterSeq, 0, pgWrap("strip fields", err)
	}
	defer rows.Close()
	last, n := afterSeq, 0
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return afterSeq, 0, pgWrap("strip fields", err)
		}
		last = max(last, seq)
		n++
	}
	return last, n, pgWrap("strip fields", rows.Err())
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
