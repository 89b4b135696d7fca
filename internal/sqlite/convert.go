package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
)

// convertEventRows moves a database of the old layout (one row per event in
// events, one answer per batch id in batches; migration 0001) into the log
// of batches (0400), in one transaction, and drops the old tables. Every
// event keeps its position, so consumers' checkpoints stay valid. A batch
// answer whose batch stored no event cannot be tied to its installation
// and is dropped: a resend of it is checked again and, its events having
// been rejected once, rejected again. On a new database the old tables are
// empty and are simply dropped.
func convertEventRows(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'`).Scan(&n); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if n == 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	defer tx.Rollback()

	var (
		cur     *oldBatch
		last    int64
		batches int
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		batches++
		err := cur.insert(ctx, tx)
		cur = nil
		return err
	}
	for {
		chunk, err := readOldEvents(ctx, tx, last, 5000)
		if err != nil {
			return err
		}
		for i := range chunk {
			r := &chunk[i]
			last = r.Seq
			if cur == nil || cur.head.BatchID != r.BatchID || cur.head.InstallationID != r.InstallationID {
				if err := flush(); err != nil {
					return err
				}
				cur = &oldBatch{head: batchcodec.Header{
					First: r.Seq, BatchID: r.BatchID, InstallationID: r.InstallationID,
					Region: r.Region, ReceivedAt: r.ReceivedAt,
				}}
			}
			cur.add(r)
		}
		if len(chunk) < 5000 {
			break
		}
	}
	if err := flush(); err != nil {
		return err
	}
	// The answers of batches that stored events, now per installation.
	if _, err := tx.ExecContext(ctx, `INSERT INTO batch_keys (installation_id, batch_id, received_at, seq_end, response)
		SELECT l.installation_id, b.batch_id, b.received_at, max(l.seq_end), b.response
		FROM batches b JOIN log_batches l ON l.batch_id = b.batch_id
		GROUP BY l.installation_id, b.batch_id
		ON CONFLICT DO NOTHING`); err != nil {
		return fmt.Errorf("convert: answers: %w", err)
	}
	// Positions handed out before (also those of purged events) stay used.
	var old int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events'`).Scan(&old); err != nil {
		return fmt.Errorf("convert: head: %w", err)
	}
	h, err := head(ctx, tx)
	if err != nil {
		return err
	}
	if old > h {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sqlite_sequence WHERE name = 'log_batches'`); err != nil {
			return fmt.Errorf("convert: head: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES ('log_batches', ?)`, old); err != nil {
			return fmt.Errorf("convert: head: %w", err)
		}
	}
	for _, q := range []string{`DROP TABLE events`, `DROP TABLE batches`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("convert: %s: %w", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("convert: commit: %w", err)
	}
	return nil
}

func readOldEvents(ctx context.Context, tx *sql.Tx, after int64, limit int) ([]provision.Record, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, event_id, batch_id, installation_id, region,
		received_at, type, time, fields FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	defer rows.Close()
	var out []provision.Record
	for rows.Next() {
		var (
			r              provision.Record
			received, when int64
			fields         []byte
		)
		if err := rows.Scan(&r.Seq, &r.Event.ID, &r.BatchID, &r.InstallationID, &r.Region,
			&received, &r.Event.Type, &when, &fields); err != nil {
			return nil, fmt.Errorf("convert: %w", err)
		}
		r.ReceivedAt = time.Unix(0, received).UTC()
		r.Event.Time = time.Unix(0, when).UTC()
		if r.Event.Fields, err = batchcodec.DecodeFields(fields); err != nil {
			return nil, fmt.Errorf("convert: seq %d: %w", r.Seq, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// oldBatch gathers the old rows of one batch.
type oldBatch struct {
	head    batchcodec.Header
	entries []batchcodec.Entry
}

// add takes one old row. Its country and subdivision columns repeated the
// location items of its fields, which the event keeps: the location stays
// where ingest put it, in the events whose type declares it.
func (b *oldBatch) add(r *provision.Record) {
	b.entries = append(b.entries, batchcodec.Entry{Offset: r.Seq - b.head.First, Event: r.Event})
}

func (b *oldBatch) insert(ctx context.Context, tx *sql.Tx) error {
	payload, err := batchcodec.Encode(b.entries)
	if err != nil {
		return fmt.Errorf("convert: batch %d: %w", b.head.First, err)
	}
	sum := batchcodec.Summarize(b.entries)
	h := &b.head
	if _, err := tx.ExecContext(ctx, insertBatchSQL, h.First+sum.Last, h.First, len(b.entries), h.BatchID, h.InstallationID,
		h.Region, h.ReceivedAt.UnixNano(), sum.DayMin, sum.DayMax, sum.Types, payload); err != nil {
		return fmt.Errorf("convert: batch %d: %w", h.First, err)
	}
	return nil
}
