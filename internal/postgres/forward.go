package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/provisionhq/provision/internal/forward"
)

// ForwardState is forward.State in PostgreSQL, so forwarders can run on any
// node of the scale-out mode. Marking is idempotent (ON CONFLICT DO
// NOTHING), so two forwarders racing on one installation count it once.
type ForwardState struct{ s *Store }

var _ forward.State = (*ForwardState)(nil)

// ForwardState returns the forwarders' state on the same database and pool.
func (s *Store) ForwardState() *ForwardState { return &ForwardState{s: s} }

func (f *ForwardState) Sent(ctx context.Context, recipient, installationID, day string) (bool, error) {
	var one int
	err := f.s.pool.QueryRow(ctx, `SELECT 1 FROM forward_sent WHERE recipient = $1 AND installation_id = $2 AND day = $3`,
		recipient, installationID, day).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: forward sent: %w", classify(err))
	}
	return true, nil
}

func (f *ForwardState) MarkSent(ctx context.Context, recipient, installationID, day string, at time.Time) error {
	_, err := f.s.pool.Exec(ctx, `INSERT INTO forward_sent (recipient, installation_id, day, sent_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (recipient, installation_id, day) DO NOTHING`, recipient, installationID, day, at)
	if err != nil {
		return fmt.Errorf("postgres: forward mark: %w", classify(err))
	}
	return nil
}

func (f *ForwardState) PruneSent(ctx context.Context, before string) (int, error) {
	tag, err := f.s.pool.Exec(ctx, `DELETE FROM forward_sent WHERE day < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: forward prune: %w", classify(err))
	}
	return int(tag.RowsAffected()), nil
}

func (f *ForwardState) AddDeadLetter(ctx context.Context, dl *forward.DeadLetter) error {
	err := f.s.pool.QueryRow(ctx, `INSERT INTO forward_dead_letters
		(recipient, installation_id, day, seq, count_json, attempts, reason, retryable, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		dl.Recipient, dl.InstallationID, dl.Day, dl.Seq, dl.Count, dl.Attempts, dl.Reason, dl.Retryable, dl.CreatedAt).Scan(&dl.ID)
	if err != nil {
		return fmt.Errorf("postgres: forward dead letter: %w", classify(err))
	}
	return nil
}

func (f *ForwardState) DeadLetters(ctx context.Context, recipient string, limit int) ([]forward.DeadLetter, error) {
	rows, err := f.s.pool.Query(ctx, `SELECT id, recipient, installation_id, day, seq, count_json, attempts, reason, retryable, created_at
		FROM forward_dead_letters WHERE recipient = $1 ORDER BY id LIMIT $2`, recipient, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: forward dead letters: %w", classify(err))
	}
	defer rows.Close()
	var out []forward.DeadLetter
	for rows.Next() {
		var dl forward.DeadLetter
		if err := rows.Scan(&dl.ID, &dl.Recipient, &dl.InstallationID, &dl.Day, &dl.Seq, &dl.Count,
			&dl.Attempts, &dl.Reason, &dl.Retryable, &dl.CreatedAt); err != nil {
			return nil, fmt.Errorf("postgres: forward dead letters: %w", classify(err))
		}
		dl.CreatedAt = dl.CreatedAt.UTC()
		out = append(out, dl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: forward dead letters: %w", classify(err))
	}
	return out, nil
}

func (f *ForwardState) DeleteDeadLetter(ctx context.Context, recipient string, id int64) error {
	if _, err := f.s.pool.Exec(ctx, `DELETE FROM forward_dead_letters WHERE recipient = $1 AND id = $2`, recipient, id); err != nil {
		return fmt.Errorf("postgres: forward delete dead letter: %w", classify(err))
	}
	return nil
}

func (f *ForwardState) CountDeadLetters(ctx context.Context, recipient string) (int, error) {
	var n int
	if err := f.s.pool.QueryRow(ctx, `SELECT count(*) FROM forward_dead_letters WHERE recipient = $1`, recipient).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: forward count dead letters: %w", classify(err))
	}
	return n, nil
}

func (f *ForwardState) Forget(ctx context.Context, installationID string) error {
	err := pgx.BeginFunc(ctx, f.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM forward_sent WHERE installation_id = $1`, installationID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM forward_dead_letters WHERE installation_id = $1`, installationID)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: forward forget: %w", classify(err))
	}
	return nil
}
