package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/rollup"
)

// What an erasure leaves to do after it completed, kept in the store
// (migration 0510_erasure_followups.sql): the days the rollup refresh must
// recompute, and the recipients' deletion notices.

var (
	_ privacy.NoticeStore = (*PrivacyStore)(nil)
	_ privacy.DayFinder   = (*PrivacyStore)(nil)
	_ rollup.MarkStore    = (*RollupStore)(nil)
)

// InstallationDays implements privacy.DayFinder: the days of the
// installation's batches, from their oldest to their newest event and the
// day of receipt, found through batch_keys.
func (s *PrivacyStore) InstallationDays(ctx context.Context, installationID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT day_min, day_max, received_at / 86400000000000 FROM log_batches WHERE seq_end IN
		(SELECT seq_end FROM batch_keys WHERE installation_id = ? AND seq_end <> 0)`, installationID)
	if err != nil {
		return nil, wrap("installation days", err)
	}
	defer rows.Close()
	days, err := privacy.ReadDaySpans(rows)
	return days, wrap("installation days", err)
}

// MarkDays implements rollup.MarkStore.
func (s *RollupStore) MarkDays(ctx context.Context, request string, days []string, due bool) error {
	err := s.immediate(ctx, func(c *sql.Conn) error {
		for _, d := range days {
			if _, err := c.ExecContext(ctx, `INSERT INTO rollup_refresh (day, request_id, due) VALUES (?, ?, ?)
				ON CONFLICT (day, request_id) DO NOTHING`, d, request, due); err != nil {
				return err
			}
		}
		if due {
			_, err := c.ExecContext(ctx, `UPDATE rollup_refresh SET due = 1 WHERE request_id = ? AND due = 0`, request)
			return err
		}
		return nil
	})
	return wrap("mark days", err)
}

// DueDays implements rollup.MarkStore.
func (s *RollupStore) DueDays(ctx context.Context) ([]rollup.DayMark, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT day, request_id FROM rollup_refresh WHERE due = 1 ORDER BY day, request_id`)
	if err != nil {
		return nil, wrap("due days", err)
	}
	defer rows.Close()
	var out []rollup.DayMark
	for rows.Next() {
		var m rollup.DayMark
		if err := rows.Scan(&m.Day, &m.Request); err != nil {
			return nil, wrap("due days", err)
		}
		out = append(out, m)
	}
	return out, wrap("due days", rows.Err())
}

// DropMarks implements rollup.MarkStore.
func (s *RollupStore) DropMarks(ctx context.Context, marks []rollup.DayMark) error {
	err := s.immediate(ctx, func(c *sql.Conn) error {
		for _, m := range marks {
			if _, err := c.ExecContext(ctx, `DELETE FROM rollup_refresh WHERE day = ? AND request_id = ? AND due = 1`, m.Day, m.Request); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("drop marks", err)
}

// EnqueueNotices implements privacy.NoticeStore.
func (s *PrivacyStore) EnqueueNotices(ctx context.Context, requestID, installationID string, recipients []string, at time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("enqueue notices", err)
	}
	defer tx.Rollback()
	for _, r := range recipients {
		if _, err := tx.ExecContext(ctx, `INSERT INTO privacy_notices (request_id, recipient, installation_id, state, next_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id, recipient) DO NOTHING`,
			requestID, r, installationID, privacy.NoticePending, at.UnixNano()); err != nil {
			return wrap("enqueue notices", err)
		}
	}
	return wrap("enqueue notices: commit", tx.Commit())
}

// ClaimNotices implements privacy.NoticeStore.
func (s *PrivacyStore) ClaimNotices(ctx context.Context, now, until time.Time, limit int) ([]privacy.Notice, error) {
	rows, err := s.db.QueryContext(ctx, `UPDATE privacy_notices SET next_at = ?
		WHERE (request_id, recipient) IN (SELECT request_id, recipient FROM privacy_notices
			WHERE state = ? AND next_at <= ? ORDER BY next_at LIMIT ?)
		RETURNING `+privacy.NoticeColumns, until.UnixNano(), privacy.NoticePending, now.UnixNano(), limit)
	if err != nil {
		return nil, wrap("claim notices", err)
	}
	defer rows.Close()
	out, err := privacy.ReadNotices(rows)
	return out, wrap("claim notices", err)
}

// ConfirmNotice implements privacy.NoticeStore. The id's bytes are zeroed
// in the page (secure_delete) and the WAL frames that held them are
// truncated, as at the end of an erasure.
func (s *PrivacyStore) ConfirmNotice(ctx context.Context, requestID, recipient string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE privacy_notices SET state = ?, confirmed_at = ?, installation_id = NULL, last_error = ''
		WHERE request_id = ? AND recipient = ?`, privacy.NoticeConfirmed, at.UnixNano(), requestID, recipient); err != nil {
		return wrap("confirm notice", err)
	}
	return truncateWAL(ctx, s.db)
}

// DeferNotice implements privacy.NoticeStore.
func (s *PrivacyStore) DeferNotice(ctx context.Context, requestID, recipient string, attempts int, next time.Time, lastError string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE privacy_notices SET attempts = ?, next_at = ?, last_error = ?
		WHERE request_id = ? AND recipient = ? AND state = ?`, attempts, next.UnixNano(), lastError, requestID, recipient, privacy.NoticePending)
	return wrap("defer notice", err)
}

// Notices implements privacy.NoticeStore.
func (s *PrivacyStore) Notices(ctx context.Context, requestID string) ([]privacy.Notice, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+privacy.NoticeColumns+` FROM privacy_notices WHERE request_id = ? ORDER BY recipient`, requestID)
	if err != nil {
		return nil, wrap("notices", err)
	}
	defer rows.Close()
	out, err := privacy.ReadNotices(rows)
	return out, wrap("notices", err)
}
