package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/provisionhq/provision"
)

const nanosPerDay = int64(24 * time.Hour)

// day is the UTC day of t as days since the Unix epoch.
func day(t time.Time) int64 {
	n := t.UnixNano()
	d := n / nanosPerDay
	if n < 0 && n%nanosPerDay != 0 {
		d--
	}
	return d
}

// Append stores the submission in one transaction and returns after the
// commit is durable. A batch id seen before stores nothing and returns the
// first response. An event id seen before (in an earlier batch) is not
// stored again: every event id is in the log at most once.
func (s *Store) Append(ctx context.Context, sub *provision.Submission) ([]byte, bool, error) {
	// Encode before taking the lock: the writer's time is the scarce one.
	fields := make([][]byte, len(sub.Events))
	var buf bytes.Buffer
	for i := range sub.Events {
		buf.Reset()
		ev := &sub.Events[i]
		if ev.Fields == nil {
			fields[i] = []byte("{}")
			continue
		}
		if err := json.NewEncoder(&buf).Encode(ev.Fields); err != nil {
			return nil, false, fmt.Errorf("append: event %d fields: %w", i, err)
		}
		fields[i] = bytes.Clone(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}

	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, wrap("append", err)
	}
	defer tx.Rollback()

	received := sub.ReceivedAt.UnixNano()
	res, err := tx.ExecContext(ctx,
		`INSERT INTO batches (batch_id, received_at, response) VALUES (?, ?, ?) ON CONFLICT (batch_id) DO NOTHING`,
		sub.BatchID, received, sub.Response)
	if err != nil {
		return nil, false, wrap("append", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, false, wrap("append", err)
	} else if n == 0 {
		var earlier []byte
		if err := tx.QueryRowContext(ctx, `SELECT response FROM batches WHERE batch_id = ?`, sub.BatchID).Scan(&earlier); err != nil {
			return nil, false, wrap("append: earlier response", err)
		}
		return earlier, true, nil
	}

	if len(sub.Events) > 0 {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO events
			(event_id, batch_id, installation_id, region, country, subdivision, received_at, day, type, time, fields)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (event_id) DO NOTHING`)
		if err != nil {
			return nil, false, wrap("append", err)
		}
		defer stmt.Close()
		for i := range sub.Events {
			ev := &sub.Events[i]
			country, subdivision := location(ev)
			if _, err := stmt.ExecContext(ctx, ev.ID, sub.BatchID, sub.InstallationID, sub.Region,
				country, subdivision, received, day(ev.Time), ev.Type, ev.Time.UnixNano(), fields[i]); err != nil {
				return nil, false, wrap("append", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, false, wrap("append: commit", err)
	}
	return sub.Response, false, nil
}

// location returns the server-derived location items of the event. Ingest
// adds them only to events whose type the manifest declares them for, so an
// event of any other type keeps no location, even though the batch has one.
func location(ev *provision.Event) (country, subdivision string) {
	country, _ = ev.Fields[ItemCountry].(string)
	subdivision, _ = ev.Fields[ItemSubdivision].(string)
	return country, subdivision
}

// Read returns up to limit records with Seq > after, in Seq order.
func (s *Store) Read(ctx context.Context, after int64, limit int) ([]provision.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, event_id, batch_id, installation_id, region, country, subdivision,
			received_at, type, time, fields
		FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, wrap("read", err)
	}
	defer rows.Close()
	var out []provision.Record
	for rows.Next() {
		var (
			r              provision.Record
			received, when int64
			fields         []byte
		)
		if err := rows.Scan(&r.Seq, &r.Event.ID, &r.BatchID, &r.InstallationID, &r.Region, &r.Country, &r.Subdivision,
			&received, &r.Event.Type, &when, &fields); err != nil {
			return nil, wrap("read", err)
		}
		r.ReceivedAt = time.Unix(0, received).UTC()
		r.Event.Time = time.Unix(0, when).UTC()
		if r.Event.Fields, err = decodeFields(fields); err != nil {
			return nil, fmt.Errorf("read: seq %d: %w", r.Seq, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("read", err)
	}
	return out, nil
}

// decodeFields keeps numbers as json.Number, as ingest decoded them, so a
// record read back validates exactly like the event that was accepted.
func decodeFields(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("fields: %w", err)
	}
	return m, nil
}

// Head returns the highest Seq appended so far, 0 for an empty log. It
// comes from sqlite_sequence, so positions of purged or erased rows still
// count: the head never moves backwards.
func (s *Store) Head(ctx context.Context) (int64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'events'`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("head", err)
	}
	return seq, nil
}

// Checkpoint returns the consumer's position, 0 when it has none yet.
func (s *Store) Checkpoint(ctx context.Context, consumer string) (int64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM checkpoints WHERE consumer = ?`, consumer).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("checkpoint", err)
	}
	return seq, nil
}

// SetCheckpoint records the consumer's position durably.
func (s *Store) SetCheckpoint(ctx context.Context, consumer string, seq int64) error {
	if consumer == "" {
		return errors.New("set checkpoint: empty consumer name")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO checkpoints (consumer, seq) VALUES (?, ?)
		ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq`, consumer, seq)
	return wrap("set checkpoint", err)
}
