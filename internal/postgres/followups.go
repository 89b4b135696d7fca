package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

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
// day of receipt, by the narrow installation index of log_batches.
func (p *PrivacyStore) InstallationDays(ctx context.Context, installationID string) ([]string, error) {
	rows, err := p.s.pool.Query(ctx, `SELECT DISTINCT day_min::bigint, day_max::bigint,
		floor(extract(epoch FROM received_at) / 86400)::bigint FROM log_batches WHERE installation_id = $1`, installationID)
	if err != nil {
		return nil, pgWrap("installation days", err)
	}
	defer rows.Close()
	days, err := privacy.ReadDaySpans(rows)
	return days, pgWrap("installation days", err)
}

// MarkDays implements rollup.MarkStore.
func (r *RollupStore) MarkDays(ctx context.Context, request string, days []string, due bool) error {
	err := pgx.BeginFunc(ctx, r.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO rollup_refresh (day, request_id, due)
			SELECT d, $2, $3 FROM unnest($1::text[]) AS d ON CONFLICT (day, request_id) DO NOTHING`, days, request, due); err != nil {
			return err
		}
		if due {
			_, err := tx.Exec(ctx, `UPDATE rollup_refresh SET due = true WHERE request_id = $1 AND NOT due`, request)
			return err
		}
		return nil
	})
	return pgWrap("mark days", err)
}

// DueDays implements rollup.MarkStore.
func (r *RollupStore) DueDays(ctx context.Context) ([]rollup.DayMark, error) {
	rows, err := r.s.pool.Query(ctx, `SELECT day, request_id FROM rollup_refresh WHERE due ORDER BY day, request_id`)
	if err != nil {
		return nil, pgWrap("due days", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rollup.DayMark])
	return out, pgWrap("due days", err)
}

// DropMarks implements rollup.MarkStore.
func (r *RollupStore) DropMarks(ctx context.Context, marks []rollup.DayMark) error {
	days, reqs := make([]string, len(marks)), make([]string, len(marks))
	for i, m := range marks {
		days[i], reqs[i] = m.Day, m.Request
	}
	_, err := r.s.pool.Exec(ctx, `DELETE FROM rollup_refresh AS r USING unnest($1::text[], $2::text[]) AS m(day, request_id)
		WHERE r.day = m.day AND r.request_id = m.request_id AND r.due`, days, reqs)
	return pgWrap("drop marks", err)
}

// EnqueueNotices implements privacy.NoticeStore.
func (p *PrivacyStore) EnqueueNotices(ctx context.Context, requestID, installationID string, recipients []string, at time.Time) error {
	_, err := p.s.pool.Exec(ctx, `INSERT INTO privacy_notices (request_id, recipient, installation_id, state, next_at)
		SELECT $1, r, $3, $4, $5 FROM unnest($2::text[]) AS r ON CONFLICT (request_id, recipient) DO NOTHING`,
		requestID, recipients, installationID, privacy.NoticePending, at.UnixNano())
	return pgWrap("enqueue notices", err)
}

// ClaimNotices implements privacy.NoticeStore: SKIP LOCKED leaves the
// notices another server is claiming to it.
func (p *PrivacyStore) ClaimNotices(ctx context.Context, now, until time.Time, limit int) ([]privacy.Notice, error) {
	rows, err := p.s.pool.Query(ctx, `UPDATE privacy_notices AS n SET next_at = $1
		FROM (SELECT request_id, recipient FROM privacy_notices WHERE state = $2 AND next_at <= $3
			ORDER BY next_at LIMIT $4 FOR UPDATE SKIP LOCKED) AS d
		WHERE n.request_id = d.request_id AND n.recipient = d.recipient
		RETURNING n.request_id, n.recipient, n.installation_id, n.state, n.attempts, n.next_at, n.confirmed_at, n.last_error`,
		until.UnixNano(), privacy.NoticePending, now.UnixNano(), limit)
	if err != nil {
		return nil, pgWrap("claim notices", err)
	}
	defer rows.Close()
	out, err := privacy.ReadNotices(rows)
	return out, pgWrap("claim notices", err)
}

// ConfirmNotice implements privacy.NoticeStore. The old row version, which
// held the id, is a dead tuple until VACUUM, which is requested as after an
// erasure.
func (p *PrivacyStore) ConfirmNotice(ctx context.Context, requestID, recipient string, at time.Time) error {
	if _, err := p.s.pool.Exec(ctx, `UPDATE privacy_notices SET state = $1, confirmed_at = $2, installation_id = NULL, last_error = ''
		WHERE request_id = $3 AND recipient = $4`, privacy.NoticeConfirmed, at.UnixNano(), requestID, recipient); err != nil {
		return pgWrap("confirm notice", err)
	}
	p.s.requestVacuum()
	return nil
}

// DeferNotice implements privacy.NoticeStore.
func (p *PrivacyStore) DeferNotice(ctx context.Context, requestID, recipient string, attempts int, next time.Time, lastError string) error {
	_, err := p.s.pool.Exec(ctx, `UPDATE privacy_notices SET attempts = $1, next_at = $2, last_error = $3
		WHERE request_id = $4 AND recipient = $5 AND state = $6`, attempts, next.UnixNano(), lastError, requestID, recipient, privacy.NoticePending)
	return pgWrap("defer notice", err)
}

// Notices implements privacy.NoticeStore.
func (p *PrivacyStore) Notices(ctx context.Context, requestID string) ([]privacy.Notice, error) {
	rows, err := p.s.pool.Query(ctx, `SELECT `+privacy.NoticeColumns+` FROM privacy_notices WHERE request_id = $1 ORDER BY recipient`, requestID)
	if err != nil {
		return nil, pgWrap("notices", err)
	}
	defer rows.Close()
	out, err := privacy.ReadNotices(rows)
	return out, pgWrap("notices", err)
}
