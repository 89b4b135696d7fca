package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
//
// Concurrent appends are committed together (group commit): whoever holds
// the write lock takes every submission queued so far into one transaction
// and one fsync, so the disk's sync latency is paid once per group rather
// than once per batch. Each submission keeps its own idempotence check, and
// a failed group fails every submission in it; nothing is half-stored.
func (s *Store) Append(ctx context.Context, sub *provision.Submission) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, wrap("append", err)
	}
	// Encode before queueing: the writer's time is the scarce one.
	p := &pendingAppend{sub: sub, fields: make([][]byte, len(sub.Events)), done: make(chan struct{})}
	for i := range sub.Events {
		b, err := encodeFields(sub.Events[i].Fields)
		if err != nil {
			return nil, false, fmt.Errorf("append: event %d fields: %w", i, err)
		}
		p.fields[i] = b
	}

	s.queueMu.Lock()
	s.queue = append(s.queue, p)
	s.queueMu.Unlock()

	s.appendMu.Lock()
	select {
	case <-p.done: // an earlier leader committed it
		s.appendMu.Unlock()
		return p.result()
	default:
	}
	s.queueMu.Lock()
	group, events := s.queue, 0
	for i, q := range group {
		events += len(q.sub.Events)
		if events > maxGroupEvents && i > 0 {
			group = group[:i]
			break
		}
	}
	s.queue = append(s.queue[:0:0], s.queue[len(group):]...)
	s.queueMu.Unlock()
	s.commitGroup(group)
	s.appendMu.Unlock()
	<-p.done
	return p.result()
}

// maxGroupEvents bounds one group transaction, and so the wait of the
// batches in it.
const maxGroupEvents = 20000

type pendingAppend struct {
	sub    *provision.Submission
	fields [][]byte
	resp   []byte
	dup    bool
	err    error
	done   chan struct{}
}

func (p *pendingAppend) result() ([]byte, bool, error) { return p.resp, p.dup, p.err }

// commitGroup writes the group in one transaction and completes each
// pending append. The transaction does not follow any caller's context:
// once started, it belongs to every submission in it.
func (s *Store) commitGroup(group []*pendingAppend) {
	err := s.writeGroup(group)
	for _, p := range group {
		if err != nil {
			p.resp, p.dup, p.err = nil, false, err
		}
		close(p.done)
	}
}

func (s *Store) writeGroup(group []*pendingAppend) error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("append", err)
	}
	defer tx.Rollback()
	batchStmt := tx.StmtContext(ctx, s.insertBatch)
	for _, p := range group {
		sub := p.sub
		received := sub.ReceivedAt.UnixNano()
		res, err := batchStmt.ExecContext(ctx, sub.BatchID, received, sub.Response)
		if err != nil {
			return wrap("append", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrap("append", err)
		} else if n == 0 {
			if err := tx.QueryRowContext(ctx, `SELECT response FROM batches WHERE batch_id = ?`, sub.BatchID).Scan(&p.resp); err != nil {
				return wrap("append: earlier response", err)
			}
			p.dup = true
			continue
		}
		if err := s.insertEvents(ctx, tx, p); err != nil {
			return err
		}
		p.resp = sub.Response
	}
	if err := tx.Commit(); err != nil {
		return wrap("append: commit", err)
	}
	return nil
}

// Events go in multi-row INSERT statements, far fewer round trips through
// database/sql than one statement per event. Statements for 256, 128, …, 1
// rows are prepared once; a batch of any size is written with at most nine.
const maxRowsPerInsert = 256

const eventColumns = 11

func insertEventsSQL(rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (event_id, batch_id, installation_id, region, country, subdivision, received_at, day, type, time, fields) VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?)")
	}
	b.WriteString(` ON CONFLICT (event_id) DO NOTHING`)
	return b.String()
}

func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, p *pendingAppend) error {
	sub := p.sub
	received := sub.ReceivedAt.UnixNano()
	args := make([]any, 0, maxRowsPerInsert*eventColumns)
	for start := 0; start < len(sub.Events); {
		rows := maxRowsPerInsert
		for rows > len(sub.Events)-start {
			rows /= 2
		}
		end := start + rows
		args = args[:0]
		for i := start; i < end; i++ {
			ev := &sub.Events[i]
			country, subdivision := ev.Location()
			args = append(args, ev.ID, sub.BatchID, sub.InstallationID, sub.Region,
				country, subdivision, received, day(ev.Time), ev.Type, ev.Time.UnixNano(), p.fields[i])
		}
		if _, err := tx.StmtContext(ctx, s.insertStmts[rows]).ExecContext(ctx, args...); err != nil {
			return wrap("append", err)
		}
		start = end
	}
	return nil
}

// Read returns up to limit records with Seq > after, in Seq order.
func (s *Store) Read(ctx context.Context, after int64, limit int) ([]provision.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+recordColumns+`
		FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, wrap("read", err)
	}
	return scanRecords(rows, "read")
}

// recordColumns are the columns scanRecords reads, in its order.
const recordColumns = `seq, event_id, batch_id, installation_id, region, country, subdivision, received_at, type, time, fields`

// scanRecords reads every row of a query of recordColumns and closes rows.
func scanRecords(rows *sql.Rows, op string) ([]provision.Record, error) {
	defer rows.Close()
	var out []provision.Record
	for rows.Next() {
		var (
			r              provision.Record
			received, when int64
			fields         []byte
			err            error
		)
		if err := rows.Scan(&r.Seq, &r.Event.ID, &r.BatchID, &r.InstallationID, &r.Region, &r.Country, &r.Subdivision,
			&received, &r.Event.Type, &when, &fields); err != nil {
			return nil, wrap(op, err)
		}
		r.ReceivedAt = time.Unix(0, received).UTC()
		r.Event.Time = time.Unix(0, when).UTC()
		if r.Event.Fields, err = decodeFields(fields); err != nil {
			return nil, fmt.Errorf("%s: seq %d: %w", op, r.Seq, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
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

// Consumers lists the consumers that have a checkpoint, for the lag metric.
func (s *Store) Consumers(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT consumer FROM checkpoints ORDER BY consumer`)
	if err != nil {
		return nil, wrap("consumers", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, wrap("consumers", err)
		}
		out = append(out, name)
	}
	return out, wrap("consumers", rows.Err())
}
