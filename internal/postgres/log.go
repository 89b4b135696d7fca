package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
)

// maxRead bounds one Read, whatever limit the caller asks for.
const maxRead = 10000

// batchColumns are the columns scanBatch reads, in its order.
const batchColumns = `seq_end, seq_first, batch_id, installation_id, region,
	received_at, received_at_nanos, payload`

func scanBatch(rows pgx.Rows) (*batchcodec.Stored, error) {
	b, payload, err := scanBatchRaw(rows)
	if err != nil {
		return nil, err
	}
	return b, b.SetPayload(payload)
}

// scanBatchRaw reads the batch without decoding its payload.
func scanBatchRaw(rows pgx.Rows) (*batchcodec.Stored, []byte, error) {
	var (
		b       batchcodec.Stored
		nanos   int16
		payload []byte
	)
	h := &b.Head
	if err := rows.Scan(&b.End, &h.First, &h.BatchID, &h.InstallationID, &h.Region,
		&h.ReceivedAt, &nanos, &payload); err != nil {
		return nil, nil, err
	}
	h.ReceivedAt = h.ReceivedAt.UTC().Add(time.Duration(nanos))
	return &b, payload, nil
}

// readBatches expands the batches a query of batchColumns returns, in its
// order, into up to limit records with Seq > after.
func readBatches(rows pgx.Rows, after int64, limit int) ([]provision.Record, error) {
	defer rows.Close()
	return batchcodec.ReadRecords(rows, func() (*batchcodec.Stored, error) { return scanBatch(rows) }, after, limit)
}

// Read implements provision.Log: up to limit records with Seq > after, in Seq
// order. Batches are decoded only as far as the limit needs.
func (s *Store) Read(ctx context.Context, after int64, limit int) ([]provision.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	if limit > maxRead {
		limit = maxRead
	}
	// Every batch row holds at least one event, so limit rows suffice.
	rows, err := s.pool.Query(ctx, `SELECT `+batchColumns+`
		FROM log_batches WHERE seq_end > $1 ORDER BY seq_end LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: read: %w", classify(err))
	}
	out, err := readBatches(rows, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: read: %w", classify(err))
	}
	return out, nil
}

// ReadEvents implements batchcodec.EventReader: Read without building
// records.
func (s *Store) ReadEvents(ctx context.Context, after int64, limit int, visit func(*batchcodec.Header, int64, *batchcodec.EventView) error) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	limit = min(limit, maxRead)
	rows, err := s.pool.Query(ctx, `SELECT `+batchColumns+`
		FROM log_batches WHERE seq_end > $1 ORDER BY seq_end LIMIT $2`, after, limit)
	if err != nil {
		return 0, fmt.Errorf("postgres: read: %w", classify(err))
	}
	defer rows.Close()
	n, err := batchcodec.ReadEvents(rows, func() (*batchcodec.Stored, []byte, error) { return scanBatchRaw(rows) }, after, limit, visit)
	if err != nil {
		return n, fmt.Errorf("postgres: read: %w", classify(err))
	}
	return n, nil
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
	seq, err := readCheckpoint(ctx, s.pool, "checkpoints", consumer)
	if err != nil {
		return 0, fmt.Errorf("postgres: checkpoint: %w", classify(err))
	}
	return seq, nil
}

// readCheckpoint returns the consumer's position in the table of
// checkpoints (of the log's consumers, or of the rollups), 0 when it has
// none yet.
func readCheckpoint(ctx context.Context, q pgQueryer, table, consumer string) (int64, error) {
	var seq int64
	err := q.QueryRow(ctx, `SELECT seq FROM `+table+` WHERE consumer = $1`, consumer).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return seq, err
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

// LookupResponse returns the answer stored for the installation's batch id,
// or provision.ErrNotFound. Ingest nodes use it to answer a resend that
// arrives after the log's duplicate window.
func (s *Store) LookupResponse(ctx context.Context, installationID, batchID string) ([]byte, error) {
	var r []byte
	err := s.pool.QueryRow(ctx, `SELECT response FROM batch_keys WHERE installation_id = $1 AND batch_id = $2`,
		installationID, batchID).Scan(&r)
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
	return s.names(ctx, "consumers", `SELECT consumer FROM checkpoints ORDER BY consumer`)
}

// names runs a query of one text column and returns its rows.
func (s *Store) names(ctx context.Context, op, query string) ([]string, error) {
	rows, err := s.pool.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, classify(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, classify(err))
	}
	return names, nil
}
