package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
	"github.com/provisionhq/provision/internal/clock"
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

// DeleteEvents implements privacy.Store. It removes whole batches of the
// installation, found through batch_keys, with their stored answers, until
// at least limit events are removed or none are left, and returns the
// events it removed.
func (s *PrivacyStore) DeleteEvents(ctx context.Context, installationID string, limit int) ([]provision.Event, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap("delete events", err)
	}
	defer tx.Rollback()
	var out []provision.Event
	for len(out) < limit {
		rows, err := tx.QueryContext(ctx, `DELETE FROM batch_keys WHERE installation_id = ? AND batch_id IN
			(SELECT batch_id FROM batch_keys WHERE installation_id = ? LIMIT 100) RETURNING seq_end`, installationID, installationID)
		if err != nil {
			return nil, wrap("delete events", err)
		}
		ends, err := scanInts(rows)
		if err != nil {
			return nil, wrap("delete events", err)
		}
		if len(ends) == 0 {
			break
		}
		for _, end := range ends {
			if end == 0 {
				continue
			}
			evs, err := deleteBatch(ctx, tx, end)
			if err != nil {
				return nil, err
			}
			out = append(out, evs...)
		}
	}
	// Batches whose answers were lost (as a conversion from the old layout
	// drops some) are found by installation too; this is a scan, and runs
	// only once the answers are gone.
	if len(out) < limit {
		rows, err := tx.QueryContext(ctx, `SELECT seq_end FROM log_batches WHERE installation_id = ? LIMIT ?`, installationID, limit)
		if err != nil {
			return nil, wrap("delete events", err)
		}
		ends, err := scanInts(rows)
		if err != nil {
			return nil, wrap("delete events", err)
		}
		for _, end := range ends {
			evs, err := deleteBatch(ctx, tx, end)
			if err != nil {
				return nil, err
			}
			out = append(out, evs...)
		}
	}
	return out, wrap("delete events: commit", tx.Commit())
}

func scanInts(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// deleteBatch deletes the batch ending at end and returns its events.
func deleteBatch(ctx context.Context, tx *sql.Tx, end int64) ([]provision.Event, error) {
	var payload []byte
	err := tx.QueryRowContext(ctx, `DELETE FROM log_batches WHERE seq_end = ? RETURNING payload`, end).Scan(&payload)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // purged by retention already
	}
	if err != nil {
		return nil, wrap("delete events", err)
	}
	entries, err := batchcodec.Decode(payload)
	if err != nil {
		return nil, fmt.Errorf("delete events: batch ending at %d: %w", end, err)
	}
	out := make([]provision.Event, len(entries))
	for i := range entries {
		out[i] = entries[i].Event
	}
	return out, nil
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
	err = privacy.AppendAudit(e, string(removed), func() (seq int64, hash string, err error) {
		err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM privacy_audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, "", nil
		}
		return seq, hash, err
	}, func(row ...any) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO privacy_audit (`+privacy.AuditColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, row...)
		return err
	})
	if err != nil {
		return wrap("complete erasure", err)
	}
	if err := tx.Commit(); err != nil {
		return wrap("complete erasure: commit", err)
	}
	// secure_delete has zeroed the erased rows in their pages, but the WAL
	// still holds the frames written before the deletes. Fold it into the
	// database and truncate it, so no frame keeps the erased bytes.
	return truncateWAL(ctx, s.db)
}

// truncateWAL runs a TRUNCATE checkpoint. A reader in the middle of a
// transaction can keep the checkpoint from finishing (SQLite then reports
// busy); it is retried for a while, as readers are short.
func truncateWAL(ctx context.Context, db *sql.DB) error {
	for wait := 5 * time.Millisecond; ; wait *= 2 {
		var busy, logFrames, checkpointed int
		err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed)
		if err != nil {
			return wrap("wal checkpoint", err)
		}
		if busy == 0 {
			return nil
		}
		if wait > 2*time.Second {
			return fmt.Errorf("wal checkpoint: %w: readers kept the WAL busy", provision.ErrUnavailable)
		}
		if err := clock.Sleep(ctx, wait); err != nil {
			return wrap("wal checkpoint", err)
		}
	}
}

// PendingErasures implements privacy.Store.
func (s *PrivacyStore) PendingErasures(ctx context.Context, limit int) ([]privacy.Pending, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+privacy.PendingColumns+`
		FROM privacy_requests WHERE status = ? ORDER BY requested_at LIMIT ?`, privacy.StatusPending, limit)
	if err != nil {
		return nil, wrap("pending erasures", err)
	}
	defer rows.Close()
	out, err := privacy.ReadPending(rows)
	return out, wrap("pending erasures", err)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func request(ctx context.Context, q queryer, id string) (*privacy.Request, error) {
	r, err := privacy.ScanRequest(q.QueryRowContext(ctx, `SELECT `+privacy.RequestColumns+`
		FROM privacy_requests WHERE request_id = ?`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("erasure request %q: %w", id, provision.ErrNotFound)
	}
	return r, wrap("erasure request", err)
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
	out, err := privacy.ReadAudit(rows)
	return out, wrap("audit", err)
}

// InstallationEvents implements privacy.Store: the installation's batches
// come from batch_keys, in the order of the log.
func (s *PrivacyStore) InstallationEvents(ctx context.Context, installationID string, after int64, limit int) ([]provision.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+batchColumns+` FROM log_batches WHERE seq_end IN
		(SELECT seq_end FROM batch_keys WHERE installation_id = ? AND seq_end > ?)
		ORDER BY seq_end`, installationID, after)
	if err != nil {
		return nil, wrap("installation events", err)
	}
	out, err := readBatches(rows, after, limit)
	return out, wrap("installation events", err)
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

// PurgeEvents implements privacy.Store. Batches that may hold such events
// are picked by their oldest event day and the types they hold (an index
// and a column of log_batches); each is rewritten without them, or deleted
// when nothing is left. It stops once at least limit events are removed.
func (s *PrivacyStore) PurgeEvents(ctx context.Context, eventType string, before time.Time, limit int) (int64, error) {
	pass := batchcodec.NewPurge(eventType, batchcodec.Day(before), limit)
	err := s.rewriteBatches(ctx, `day_min < ? AND instr(types, ?) > 0`, []any{pass.Cutoff, batchcodec.TypeToken(eventType)}, pass.Visit)
	if err != nil {
		return 0, wrap("purge events", err)
	}
	return pass.Removed, nil
}

// rewriteBatches visits, in log order, the batches that match where (a
// condition on log_batches' columns), lets visit change their entries, and
// writes back those it changed: rewritten, or deleted when empty. visit
// returns whether it changed the batch and whether to go on. It runs in one
// transaction.
func (s *PrivacyStore) rewriteBatches(ctx context.Context, where string, args []any, visit func(*batchcodec.Stored) (changed, more bool)) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	page := func(after int64) ([]*batchcodec.Stored, error) {
		rows, err := tx.QueryContext(ctx, `SELECT `+batchColumns+` FROM log_batches WHERE seq_end > ? AND `+where+`
			ORDER BY seq_end LIMIT `+strconv.Itoa(batchcodec.RewritePage), append([]any{after}, args...)...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return batchcodec.ScanAll(rows, func() (*batchcodec.Stored, error) { return scanBatch(rows) })
	}
	write := func(b *batchcodec.Stored) error { return writeBack(ctx, tx, b) }
	if err := batchcodec.Rewrite(page, write, visit); err != nil {
		return err
	}
	return tx.Commit()
}

// writeBack stores a batch whose entries changed, or deletes it when none
// is left. Its positions do not move.
func writeBack(ctx context.Context, tx *sql.Tx, b *batchcodec.Stored) error {
	if len(b.Entries) == 0 {
		_, err := tx.ExecContext(ctx, `DELETE FROM log_batches WHERE seq_end = ?`, b.End)
		return err
	}
	payload, sum, err := b.Rewritten()
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE log_batches SET events = ?, day_min = ?, day_max = ?, types = ?, payload = ?
		WHERE seq_end = ?`, len(b.Entries), sum.DayMin, sum.DayMax, sum.Types, payload, b.End)
	return err
}

// StripFields implements privacy.Store.
func (s *PrivacyStore) StripFields(ctx context.Context, eventType string, items []string, from, before time.Time, afterSeq int64, limit int) (int64, int, error) {
	if len(items) == 0 {
		return afterSeq, 0, errors.New("strip fields: no items")
	}
	lo := int64(math.MinInt64)
	if !from.IsZero() {
		lo = batchcodec.Day(from)
	}
	pass := batchcodec.NewStrip(eventType, items, lo, batchcodec.Day(before), afterSeq, limit)
	err := s.rewriteBatches(ctx, `seq_end > ? AND day_min < ? AND day_max >= ? AND instr(types, ?) > 0`,
		[]any{afterSeq, pass.Hi, pass.Lo, batchcodec.TypeToken(eventType)},
		func(b *batchcodec.Stored) (bool, bool) {
			return pass.Visit(b.Head.First, b.Entries)
		})
	if err != nil {
		return afterSeq, 0, wrap("strip fields", err)
	}
	return pass.Last, pass.Visited, nil
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
