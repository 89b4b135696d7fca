package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/privacy"
)

// PrivacyStore is privacy.Store on the embedded store; its tables and
// triggers come from migration 0300_privacy.sql.
type PrivacyStore struct {
	db *sql.DB
}

var _ privacy.Store = (*PrivacyStore)(nil)

// NewPrivacyStore returns the privacy store in db, which must have been
// opened by Open (so migrated, with the SQL functions registered).
func NewPrivacyStore(db *sql.DB) *PrivacyStore { return &PrivacyStore{db: db} }

// sha256Func is the SQL function the tombstone triggers call. It is
// registered with the driver before any connection opens, so every
// connection of this program has it.
const sha256Func = "provision_sha256_hex"

func init() {
	err := msqlite.RegisterDeterministicScalarFunction(sha256Func, 1, func(_ *msqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return privacy.IDHash(v), nil
		case []byte:
			return privacy.IDHash(string(v)), nil
		case nil:
			return nil, nil
		default:
			return nil, fmt.Errorf("%s: want text, got %T", sha256Func, v)
		}
	})
	if err != nil {
		panic(err)
	}
}

// linkedTables are the tables other than events whose rows name an
// installation. Rollups hold none: they hold keyed hashes in sketches.
var linkedTables = []struct {
	kind    string
	columns string
}{
	{"forward_sent", "recipient, day, sent_at"},
	{"forward_dead_letters", "recipient, day, seq, attempts, reason, created_at"},
}

// BeginErasure implements privacy.Store.
func (s *PrivacyStore) BeginErasure(ctx context.Context, r *privacy.Request, installationID string) (*privacy.Request, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap("begin erasure", err)
	}
	defer tx.Rollback()
	existing, err := request(ctx, tx, r.ID)
	if err == nil {
		return existing, nil
	}
	if !errors.Is(err, provision.ErrNotFound) {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO privacy_tombstones (id_hash, erased_at) VALUES (?, ?)
		ON CONFLICT (id_hash) DO NOTHING`, r.IDHash, r.RequestedAt.UnixNano()); err != nil {
		return nil, wrap("begin erasure", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO privacy_requests
		(request_id, id_hash, source, status, requested_at, pending_installation_id) VALUES (?, ?, ?, ?, ?, ?)`,
		r.ID, r.IDHash, r.Source, r.Status, r.RequestedAt.UnixNano(), installationID); err != nil {
		return nil, wrap("begin erasure", err)
	}
	return nil, wrap("begin erasure: commit", tx.Commit())
}

// DeleteEvents implements privacy.Store.
func (s *PrivacyStore) DeleteEvents(ctx context.Context, installationID string, limit int) ([]provision.Event, error) {
	rows, err := s.db.QueryContext(ctx, `DELETE FROM events WHERE seq IN
		(SELECT seq FROM events WHERE installation_id = ? LIMIT ?)
		RETURNING event_id, type, time, fields`, installationID, limit)
	if err != nil {
		return nil, wrap("delete events", err)
	}
	defer rows.Close()
	var out []provision.Event
	for rows.Next() {
		var (
			ev     provision.Event
			when   int64
			fields []byte
		)
		if err := rows.Scan(&ev.ID, &ev.Type, &when, &fields); err != nil {
			return nil, wrap("delete events", err)
		}
		ev.Time = time.Unix(0, when).UTC()
		if ev.Fields, err = decodeFields(fields); err != nil {
			return nil, fmt.Errorf("delete events: %w", err)
		}
		out = append(out, ev)
	}
	return out, wrap("delete events", rows.Err())
}

// DeleteLinked implements privacy.Store.
func (s *PrivacyStore) DeleteLinked(ctx context.Context, installationID string) (map[string]int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap("delete linked", err)
	}
	defer tx.Rollback()
	out := map[string]int64{}
	for _, t := range linkedTables {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+t.kind+` WHERE installation_id = ?`, installationID)
		if err != nil {
			return nil, wrap("delete linked "+t.kind, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, wrap("delete linked "+t.kind, err)
		}
		out[t.kind] = n
	}
	return out, wrap("delete linked: commit", tx.Commit())
}

// CompleteErasure implements privacy.Store.
func (s *PrivacyStore) CompleteErasure(ctx context.Context, r *privacy.Request, e *privacy.AuditEntry) error {
	removed, err := json.Marshal(r.Removed)
	if err != nil {
		return fmt.Errorf("complete erasure: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("complete erasure", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE privacy_requests SET status = ?, completed_at = ?, removed = ?,
		pending_installation_id = NULL WHERE request_id = ? AND status = ?`,
		r.Status, r.CompletedAt.UnixNano(), string(removed), r.ID, privacy.StatusPending)
	if err != nil {
		return wrap("complete erasure", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("complete erasure", err)
	} else if n == 0 {
		// Completed concurrently by another caller: one audit entry only.
		return tx.Commit()
	}
	var (
		last int64
		prev string
	)
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM privacy_audit ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return wrap("complete erasure: audit head", err)
	}
	e.Seq = last + 1
	if err := privacy.Seal(prev, e); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO privacy_audit
		(seq, request_id, id_hash, source, requested_at, completed_at, removed, prev, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.RequestID, e.IDHash, e.Source, e.RequestedAt.UnixNano(), e.CompletedAt.UnixNano(),
		string(removed), e.Prev, e.Hash); err != nil {
		return wrap("complete erasure: audit", err)
	}
	return wrap("complete erasure: commit", tx.Commit())
}

// PendingErasures implements privacy.Store.
func (s *PrivacyStore) PendingErasures(ctx context.Context, limit int) ([]privacy.Pending, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT request_id, id_hash, source, status, requested_at, pending_installation_id
		FROM privacy_requests WHERE status = ? ORDER BY requested_at LIMIT ?`, privacy.StatusPending, limit)
	if err != nil {
		return nil, wrap("pending erasures", err)
	}
	defer rows.Close()
	var out []privacy.Pending
	for rows.Next() {
		var (
			p         privacy.Pending
			requested int64
			id        sql.NullString
		)
		if err := rows.Scan(&p.Request.ID, &p.Request.IDHash, &p.Request.Source, &p.Request.Status, &requested, &id); err != nil {
			return nil, wrap("pending erasures", err)
		}
		p.Request.RequestedAt = time.Unix(0, requested).UTC()
		p.InstallationID = id.String
		out = append(out, p)
	}
	return out, wrap("pending erasures", rows.Err())
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func request(ctx context.Context, q queryer, id string) (*privacy.Request, error) {
	var (
		r                    privacy.Request
		requested, completed int64
		removed              string
	)
	err := q.QueryRowContext(ctx, `SELECT request_id, id_hash, source, status, requested_at, completed_at, removed
		FROM privacy_requests WHERE request_id = ?`, id).
		Scan(&r.ID, &r.IDHash, &r.Source, &r.Status, &requested, &completed, &removed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("erasure request %q: %w", id, provision.ErrNotFound)
	}
	if err != nil {
		return nil, wrap("erasure request", err)
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
func (s *PrivacyStore) Request(ctx context.Context, requestID string) (*privacy.Request, error) {
	return request(ctx, s.db, requestID)
}

// Tombstoned implements privacy.Store.
func (s *PrivacyStore) Tombstoned(ctx context.Context, idHash string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM privacy_tombstones WHERE id_hash = ?`, idHash).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap("tombstoned", err)
	}
	return true, nil
}

// Audit implements privacy.Store.
func (s *PrivacyStore) Audit(ctx context.Context, after int64, limit int) ([]privacy.AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+privacy.AuditColumns+`
		FROM privacy_audit WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, wrap("audit", err)
	}
	defer rows.Close()
	var out []privacy.AuditEntry
	for rows.Next() {
		e, err := privacy.ScanAuditEntry(rows.Scan)
		if err != nil {
			return nil, wrap("audit", err)
		}
		out = append(out, e)
	}
	return out, wrap("audit", rows.Err())
}

// InstallationEvents implements privacy.Store.
func (s *PrivacyStore) InstallationEvents(ctx context.Context, installationID string, after int64, limit int) ([]provision.Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+recordColumns+`
		FROM events WHERE installation_id = ? AND seq > ? ORDER BY seq LIMIT ?`, installationID, after, limit)
	if err != nil {
		return nil, wrap("installation events", err)
	}
	return scanRecords(rows, "installation events")
}

// Linked implements privacy.Store.
func (s *PrivacyStore) Linked(ctx context.Context, installationID string) ([]privacy.LinkedRecord, error) {
	var out []privacy.LinkedRecord
	for _, t := range linkedTables {
		cols := strings.Split(t.columns, ", ")
		rows, err := s.db.QueryContext(ctx, `SELECT `+t.columns+` FROM `+t.kind+` WHERE installation_id = ?`, installationID)
		if err != nil {
			return nil, wrap("linked "+t.kind, err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, wrap("linked "+t.kind, err)
			}
			rec := privacy.LinkedRecord{Kind: t.kind, Fields: map[string]any{}}
			for i, c := range cols {
				v := vals[i]
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				if strings.HasSuffix(c, "_at") {
					if n, ok := v.(int64); ok {
						v = time.Unix(0, n).UTC()
					}
				}
				rec.Fields[c] = v
			}
			out = append(out, rec)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, wrap("linked "+t.kind, err)
		}
	}
	return out, nil
}

// PurgeEvents implements privacy.Store. The (day, type) index makes the
// selection a range scan.
func (s *PrivacyStore) PurgeEvents(ctx context.Context, eventType string, before time.Time, limit int) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM events WHERE seq IN
		(SELECT seq FROM events WHERE day < ? AND type = ? LIMIT ?)`, day(before), eventType, limit)
	if err != nil {
		return 0, wrap("purge events", err)
	}
	n, err := res.RowsAffected()
	return n, wrap("purge events", err)
}

// jsonPath quotes an item id as a JSON path label: ids contain dots.
func jsonPath(item string) string { return `$.` + strconv.Quote(item) }

// StripFields implements privacy.Store.
func (s *PrivacyStore) StripFields(ctx context.Context, eventType string, items []string, from, before time.Time, afterSeq int64, limit int) (int64, int, error) {
	if len(items) == 0 {
		return afterSeq, 0, errors.New("strip fields: no items")
	}
	set := `fields = json_remove(fields` + strings.Repeat(", ?", len(items)) + `)`
	args := make([]any, 0, len(items)+5)
	for _, it := range items {
		args = append(args, jsonPath(it))
		// The location columns repeat two items; they go with them.
		switch it {
		case provision.ItemCountry:
			set += `, country = ''`
		case provision.ItemSubdivision:
			set += `, subdivision = ''`
		}
	}
	where := `type = ? AND day < ? AND seq > ?`
	args = append(args, eventType, day(before), afterSeq)
	if !from.IsZero() {
		where += ` AND day >= ?`
		args = append(args, day(from))
	}
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, `UPDATE events SET `+set+` WHERE seq IN
		(SELECT seq FROM events WHERE `+where+` ORDER BY seq LIMIT ?) RETURNING seq`, args...)
	if err != nil {
		return afterSeq, 0, wrap("strip fields", err)
	}
	defer rows.Close()
	last, n := afterSeq, 0
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return afterSeq, 0, wrap("strip fields", err)
		}
		last = max(last, seq)
		n++
	}
	return last, n, wrap("strip fields", rows.Err())
}

// RetentionMark implements privacy.Store.
func (s *PrivacyStore) RetentionMark(ctx context.Context, rule string) (time.Time, int64, error) {
	var through, seq int64
	err := s.db.QueryRowContext(ctx, `SELECT through, seq FROM privacy_retention WHERE rule = ?`, rule).Scan(&through, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, 0, nil
	}
	if err != nil {
		return time.Time{}, 0, wrap("retention mark", err)
	}
	return time.Unix(0, through).UTC(), seq, nil
}

// SetRetentionMark implements privacy.Store.
func (s *PrivacyStore) SetRetentionMark(ctx context.Context, rule string, through time.Time, seq int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO privacy_retention (rule, through, seq) VALUES (?, ?, ?)
		ON CONFLICT (rule) DO UPDATE SET through = excluded.through, seq = excluded.seq`, rule, through.UnixNano(), seq)
	return wrap("set retention mark", err)
}
