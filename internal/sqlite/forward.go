package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/provisionhq/provision/internal/forward"
)

// ForwardState is forward.State on the embedded store; its tables come
// from migration 0200_forward.sql.
type ForwardState struct {
	db *sql.DB
}

var _ forward.State = (*ForwardState)(nil)

// NewForwardState returns the forwarders' state in db, which must have been
// migrated.
func NewForwardState(db *sql.DB) *ForwardState { return &ForwardState{db: db} }

// Sent implements forward.State.
func (s *ForwardState) Sent(ctx context.Context, recipient, installationID, day string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx,
		`SELECT 1 FROM forward_sent WHERE recipient = ? AND installation_id = ? AND day = ?`,
		recipient, installationID, day).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	}
	return err == nil, err
}

// MarkSent implements forward.State.
func (s *ForwardState) MarkSent(ctx context.Context, recipient, installationID, day string, at time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO forward_sent (recipient, installation_id, day, sent_at) VALUES (?, ?, ?, ?)
		 ON CONFLICT (recipient, installation_id, day) DO NOTHING`,
		recipient, installationID, day, at.UnixNano())
	return err
}

// PruneSent implements forward.State.
func (s *ForwardState) PruneSent(ctx context.Context, before string) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM forward_sent WHERE day < ?`, before)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// AddDeadLetter implements forward.State.
func (s *ForwardState) AddDeadLetter(ctx context.Context, dl *forward.DeadLetter) error {
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO forward_dead_letters
		 (recipient, installation_id, day, seq, count_json, attempts, reason, retryable, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		dl.Recipient, dl.InstallationID, dl.Day, dl.Seq, dl.Count, dl.Attempts, dl.Reason, dl.Retryable, dl.CreatedAt.UnixNano())
	if err != nil {
		return err
	}
	dl.ID, err = res.LastInsertId()
	return err
}

// DeadLetters implements forward.State.
func (s *ForwardState) DeadLetters(ctx context.Context, recipient string, limit int) ([]forward.DeadLetter, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, recipient, installation_id, day, seq, count_json, attempts, reason, retryable, created_at
		 FROM forward_dead_letters WHERE recipient = ? ORDER BY id LIMIT ?`, recipient, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []forward.DeadLetter
	for rows.Next() {
		var dl forward.DeadLetter
		var created int64
		if err := rows.Scan(&dl.ID, &dl.Recipient, &dl.InstallationID, &dl.Day, &dl.Seq, &dl.Count,
			&dl.Attempts, &dl.Reason, &dl.Retryable, &created); err != nil {
			return nil, err
		}
		dl.CreatedAt = time.Unix(0, created).UTC()
		out = append(out, dl)
	}
	return out, rows.Err()
}

// DeleteDeadLetter implements forward.State.
func (s *ForwardState) DeleteDeadLetter(ctx context.Context, recipient string, id int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM forward_dead_letters WHERE recipient = ? AND id = ?`, recipient, id)
	return err
}

// CountDeadLetters implements forward.State.
func (s *ForwardState) CountDeadLetters(ctx context.Context, recipient string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM forward_dead_letters WHERE recipient = ?`, recipient).Scan(&n)
	return n, err
}

// Forget implements forward.State.
func (s *ForwardState) Forget(ctx context.Context, installationID string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM forward_sent WHERE installation_id = ?`, installationID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM forward_dead_letters WHERE installation_id = ?`, installationID); err != nil {
		return err
	}
	return tx.Commit()
}
