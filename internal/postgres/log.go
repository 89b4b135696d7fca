package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/provisionhq/provision"
)

// maxRead bounds one Read, whatever limit the caller asks for.
const maxRead = 10000

// Read implements provision.Log: up to limit records with Seq > after, in Seq
// order.
func (s *Store) Read(ctx context.Context, after int64, limit int) ([]provision.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	if limit > maxRead {
		limit = maxRead
	}
	rows, err := s.pool.Query(ctx, `
		SELECT seq, received_at, batch_id, installation_id, region, country,
		       subdivision, event_id, event_type, event_time, fields,
		       received_at_nanos, event_time_nanos
		FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: read: %w", classify(err))
	}
	defer rows.Close()
	var out []provision.Record
	for rows.Next() {
		var r provision.Record
		var fields []byte
		var recvNanos, timeNanos int16
		if err := rows.Scan(&r.Seq, &r.ReceivedAt, &r.BatchID, &r.InstallationID, &r.Region, &r.Country,
			&r.Subdivision, &r.Event.ID, &r.Event.Type, &r.Event.Time, &fields, &recvNanos, &timeNanos); err != nil {
			return nil, fmt.Errorf("postgres: read: %w", classify(err))
		}
		// Numbers stay json.Number, as ingest decoded them: an integer
		// item never turns into a float on the way through the store.
		dec := json.NewDecoder(bytes.NewReader(fields))
		dec.UseNumber()
		if err := dec.Decode(&r.Event.Fields); err != nil {
			return nil, fmt.Errorf("postgres: read: seq %d: fields: %w", r.Seq, err)
		}
		r.ReceivedAt = r.ReceivedAt.UTC().Add(time.Duration(recvNanos))
		r.Event.Time = r.Event.Time.UTC().Add(time.Duration(timeNanos))
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read: %w", classify(err))
	}
	return out, nil
}

// Head implements provision.Log: the highest Seq appended so far.
func (s *Store) Head(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT seq FROM log_head`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("postgres: head: %w", classify(err))
	}
	return seq, nil
}

// Checkpoint implements provision.Checkpoints: the consumer's position, 0
// when it has none yet.
func (s *Store) Checkpoint(ctx context.Context, consumer string) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM checkpoints WHERE consumer = $1`, consumer).Scan(&seq)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: checkpoint: %w", classify(err))
	}
	return seq, nil
}

// SetCheckpoint implements provision.Checkpoints.
func (s *Store) SetCheckpoint(ctx context.Context, consumer string, seq int64) error {
	if consumer == "" {
		return fmt.Errorf("postgres: set checkpoint: empty consumer name")
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO checkpoints (consumer, seq) VALUES ($1, $2)
		ON CONFLICT (consumer) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now()`, consumer, seq)
	if err != nil {
		return fmt.Errorf("postgres: set checkpoint: %w", classify(err))
	}
	return nil
}

// LookupResponse returns the answer stored for a batch id, or
// provision.ErrNotFound. Ingest nodes use it to answer a resend that
// arrives after the log's duplicate window.
func (s *Store) LookupResponse(ctx context.Context, batchID string) ([]byte, error) {
	var r []byte
	err := s.pool.QueryRow(ctx, `SELECT response FROM batches WHERE batch_id = $1`, batchID).Scan(&r)
	if err == pgx.ErrNoRows {
		return nil, provision.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: lookup: %w", classify(err))
	}
	return r, nil
}

var (
	_ provision.Log         = (*Store)(nil)
	_ provision.Checkpoints = (*Store)(nil)
)

// Consumers lists the consumers that have a checkpoint, for the lag metric.
func (s *Store) Consumers(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT consumer FROM checkpoints ORDER BY consumer`)
	if err != nil {
		return nil, fmt.Errorf("postgres: consumers: %w", classify(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: consumers: %w", classify(err))
	}
	return names, nil
}
