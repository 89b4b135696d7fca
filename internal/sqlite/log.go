package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
)

// Append stores the submission and returns after the commit is durable.
// The batch's accepted events become one row of log_batches, encoded and
// compressed together, and its answer one row of batch_keys. A batch id this
// installation sent before stores nothing and returns the first response;
// the same batch id from another installation is another batch.
//
// An event is stored once per installation because the batch is: the agent
// resends a batch byte for byte under its id until it has an answer, and
// ingest refuses an event id repeated inside a batch. No index over event
// ids is kept (it was a third of the cost of an append).
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
	// Encode and compress before queueing: the writer's time is the scarce
	// one, and every request's goroutine can do this in parallel.
	p := &pendingAppend{sub: sub, done: make(chan struct{})}
	if enc, err := batchcodec.EncodeEvents(sub.Events); err != nil {
		return nil, false, fmt.Errorf("append: %w", err)
	} else if enc != nil {
		p.payload, p.sum = enc.Payload, enc.Summary
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
	if s.lastGroup > 1 {
		// Uploads are arriving together: wait for more of them to
		// join the group (see commitDelay).
		s.wait(commitDelay)
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
	s.lastGroup = len(group)
	s.appendMu.Unlock()
	<-p.done
	return p.result()
}

// commitDelay is how long the committing appender waits for more batches
// to join its group when the previous group held more than one, as
// PostgreSQL's commit_delay does when other transactions are active. Most
// of a commit's CPU does not depend on its size: its sync and the pages
// every commit rewrites. Under bench/ingest's load (8 concurrent uploads)
// groups held 1.4 batches without the wait and 2.7 with 1 ms; with 2 ms
// serve's events/s rose by 10-20% and its median latency did not, since
// the CPU saved went to the requests. A lone uploader never waits: its
// groups hold one batch.
const commitDelay = 2 * time.Millisecond

// maxGroupEvents bounds one group transaction, and so the wait of the
// batches in it.
const maxGroupEvents = 20000

type pendingAppend struct {
	sub     *provision.Submission
	payload []byte
	sum     batchcodec.Summary
	resp    []byte
	dup     bool
	err     error
	done    chan struct{}
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

const insertKeySQL = `INSERT INTO batch_keys (installation_id, batch_id, received_at, seq_end, response)
	VALUES (?, ?, ?, ?, ?) ON CONFLICT (installation_id, batch_id) DO NOTHING`

const insertBatchSQL = `INSERT INTO log_batches (seq_end, seq_first, events, batch_id, installation_id, region,
	received_at, day_min, day_max, types, payload)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (s *Store) writeGroup(group []*pendingAppend) error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("append", err)
	}
	defer tx.Rollback()
	// The write lock is held from BEGIN (immediate): nobody else hands out
	// positions until the commit.
	// Prepared once: preparing it for every group was a fifth of the
	// group's CPU.
	head, err := scanHead(tx.StmtContext(ctx, s.selectHead).QueryRowContext(ctx))
	if err != nil {
		return err
	}
	keyStmt, batchStmt := tx.StmtContext(ctx, s.insertKey), tx.StmtContext(ctx, s.insertBatch)
	for _, p := range group {
		sub := p.sub
		received := sub.ReceivedAt.UnixNano()
		n := int64(len(sub.Events))
		var end int64
		if n > 0 {
			end = head + p.sum.Last + 1
		}
		res, err := keyStmt.ExecContext(ctx, sub.InstallationID, sub.BatchID, received, end, sub.Response)
		if err != nil {
			return wrap("append", err)
		}
		if added, err := res.RowsAffected(); err != nil {
			return wrap("append", err)
		} else if added == 0 {
			err := tx.QueryRowContext(ctx, `SELECT response FROM batch_keys WHERE installation_id = ? AND batch_id = ?`,
				sub.InstallationID, sub.BatchID).Scan(&p.resp)
			switch {
			case err == nil:
				p.dup = true
			case errors.Is(err, sql.ErrNoRows):
				// Refused by the erasure trigger: nothing of an erased
				// installation is stored, and the agent is answered as if
				// it were, so it forgets the batch.
				p.resp = sub.Response
			default:
				return wrap("append: earlier response", err)
			}
			continue
		}
		p.resp = sub.Response
		if n == 0 {
			continue
		}
		if _, err := batchStmt.ExecContext(ctx, end, head+1, n, sub.BatchID, sub.InstallationID, sub.Region,
			received, p.sum.DayMin, p.sum.DayMax, p.sum.Types, p.payload); err != nil {
			return wrap("append", err)
		}
		head = end
	}
	if err := tx.Commit(); err != nil {
		return wrap("append: commit", err)
	}
	return nil
}

type rowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const selectHeadSQL = `SELECT seq FROM sqlite_sequence WHERE name = 'log_batches'`

// head is the highest position handed out. It comes from sqlite_sequence,
// so positions of purged or erased batches still count: the head never
// moves backwards.
func head(ctx context.Context, q rowQueryer) (int64, error) {
	return scanHead(q.QueryRowContext(ctx, selectHeadSQL))
}

func scanHead(row *sql.Row) (int64, error) {
	var seq int64
	err := row.Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("head", err)
	}
	return seq, nil
}

// batchColumns are the columns scanBatch reads, in its order.
const batchColumns = `seq_end, seq_first, batch_id, installation_id, region, received_at, payload`

func scanBatch(rows *sql.Rows) (*batchcodec.Stored, error) {
	b, payload, err := scanBatchRaw(rows)
	if err != nil {
		return nil, err
	}
	return b, b.SetPayload(payload)
}

// scanBatchRaw reads the batch without decoding its payload.
func scanBatchRaw(rows *sql.Rows) (*batchcodec.Stored, []byte, error) {
	var (
		b        batchcodec.Stored
		received int64
		payload  []byte
	)
	h := &b.Head
	if err := rows.Scan(&b.End, &h.First, &h.BatchID, &h.InstallationID, &h.Region,
		&received, &payload); err != nil {
		return nil, nil, err
	}
	h.ReceivedAt = time.Unix(0, received).UTC()
	return &b, payload, nil
}

// Read returns up to limit records with Seq > after, in Seq order. Batches
// are decoded only as far as the limit needs.
func (s *Store) Read(ctx context.Context, after int64, limit int) ([]provision.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	// Every batch row holds at least one event, so limit rows suffice.
	rows, err := s.db.QueryContext(ctx, `SELECT `+batchColumns+`
		FROM log_batches WHERE seq_end > ? ORDER BY seq_end LIMIT ?`, after, limit)
	if err != nil {
		return nil, wrap("read", err)
	}
	out, err := readBatches(rows, after, limit)
	return out, wrap("read", err)
}

// ReadEvents implements batchcodec.EventReader: Read without building
// records.
func (s *Store) ReadEvents(ctx context.Context, after int64, limit int, visit func(*batchcodec.Header, int64, *batchcodec.EventView) error) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+batchColumns+`
		FROM log_batches WHERE seq_end > ? ORDER BY seq_end LIMIT ?`, after, limit)
	if err != nil {
		return 0, wrap("read", err)
	}
	defer rows.Close()
	n, err := batchcodec.ReadEvents(rows, func() (*batchcodec.Stored, []byte, error) { return scanBatchRaw(rows) }, after, limit, visit)
	return n, wrap("read", err)
}

// readBatches expands the batches a query of batchColumns returns, in its
// order, into up to limit records with Seq > after.
func readBatches(rows *sql.Rows, after int64, limit int) ([]provision.Record, error) {
	defer rows.Close()
	return batchcodec.ReadRecords(rows, func() (*batchcodec.Stored, error) { return scanBatch(rows) }, after, limit)
}

// Head returns the highest Seq appended so far, 0 for an empty log.
func (s *Store) Head(ctx context.Context) (int64, error) { return head(ctx, s.db) }

// Checkpoint returns the consumer's position, 0 when it has none yet.
func (s *Store) Checkpoint(ctx context.Context, consumer string) (int64, error) {
	seq, err := readCheckpoint(ctx, s.db, "checkpoints", consumer)
	return seq, wrap("checkpoint", err)
}

// readCheckpoint returns the consumer's position in the table of
// checkpoints (of the log's consumers, or of the rollups), 0 when it has
// none yet.
func readCheckpoint(ctx context.Context, q queryer, table, consumer string) (int64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, `SELECT seq FROM `+table+` WHERE consumer = ?`, consumer).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, err
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
