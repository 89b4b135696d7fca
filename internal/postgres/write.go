package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/provisionhq/provision"
)

// Outcome is what writing one submission did.
type Outcome struct {
	// Duplicate is set when the batch id was written before; nothing of
	// this submission was stored.
	Duplicate bool
	// Response is the answer stored for the batch id: the submission's own
	// for a new batch, the first one's for a duplicate.
	Response []byte
	// Stored counts the events written; events whose id was already stored
	// are skipped.
	Stored int
}

// Append implements provision.Log: the submission is committed before it
// returns, and a batch id seen before stores nothing and returns the earlier
// response.
func (s *Store) Append(ctx context.Context, sub *provision.Submission) ([]byte, bool, error) {
	out, err := s.Write(ctx, []*provision.Submission{sub})
	if err != nil {
		return nil, false, err
	}
	return out[0].Response, out[0].Duplicate, nil
}

var eventColumns = []string{
	"seq", "received_at", "batch_id", "installation_id", "region", "country",
	"subdivision", "event_id", "event_type", "event_time", "fields",
	"received_at_nanos", "event_time_nanos",
}

// subMicro is the part of t that timestamptz does not keep.
func subMicro(t time.Time) int16 { return int16(t.Nanosecond() % 1000) }

// Write stores many submissions in one transaction, in order, and returns
// one outcome per submission. It is idempotent: the batches table keeps
// each batch id once (INSERT … ON CONFLICT DO NOTHING) and event_keys each
// event id once, so writing the same submissions again, as a worker does
// after a crash between commit and acknowledgement, stores nothing new. The
// events that are new go in with one COPY.
func (s *Store) Write(ctx context.Context, subs []*provision.Submission) ([]Outcome, error) {
	out := make([]Outcome, len(subs))
	if len(subs) == 0 {
		return out, nil
	}
	// The first occurrence of a batch id in this call stands for all.
	first := make(map[string]int, len(subs))
	var times []time.Time
	for i, sub := range subs {
		if sub == nil || sub.BatchID == "" {
			return nil, fmt.Errorf("postgres: write: submission %d has no batch id", i)
		}
		if sub.Response == nil {
			return nil, fmt.Errorf("postgres: write: submission %d has no response", i)
		}
		if _, ok := first[sub.BatchID]; !ok {
			first[sub.BatchID] = i
			times = append(times, sub.ReceivedAt)
		}
	}
	if err := s.ensurePartitions(ctx, times); err != nil {
		return nil, err
	}
	// Encode the fields before the transaction, so a bad value fails the
	// call without holding locks.
	fields := make([][][]byte, len(subs))
	for i, sub := range subs {
		if first[sub.BatchID] != i {
			continue
		}
		fields[i] = make([][]byte, len(sub.Events))
		for j, ev := range sub.Events {
			b, err := json.Marshal(ev.Fields)
			if err != nil {
				return nil, fmt.Errorf("postgres: write: batch %d event %d: %w", i, j, err)
			}
			if ev.Fields == nil {
				b = []byte("{}")
			}
			fields[i][j] = b
		}
	}

	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for i := range out {
			out[i] = Outcome{}
		}
		// 1. Claim the batch ids, in a fixed order so that concurrent
		// writers lock rows in the same order and cannot deadlock.
		ids := make([]string, 0, len(first))
		for id := range first {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		recv := make([]time.Time, len(ids))
		resp := make([][]byte, len(ids))
		for k, id := range ids {
			sub := subs[first[id]]
			recv[k] = sub.ReceivedAt
			resp[k] = sub.Response
		}
		rows, err := tx.Query(ctx, `
			INSERT INTO batches (batch_id, received_at, response)
			SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bytea[])
			ORDER BY 1
			ON CONFLICT (batch_id) DO NOTHING
			RETURNING batch_id`, ids, recv, resp)
		if err != nil {
			return err
		}
		fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		isFresh := make(map[string]bool, len(fresh))
		for _, id := range fresh {
			isFresh[id] = true
		}

		// 2. Claim the event ids of the new batches; the first occurrence
		// of an id wins.
		type ref struct{ sub, ev int }
		firstEvent := map[string]ref{}
		for i, sub := range subs {
			if first[sub.BatchID] != i || !isFresh[sub.BatchID] {
				continue
			}
			for j, ev := range sub.Events {
				if _, ok := firstEvent[ev.ID]; !ok {
					firstEvent[ev.ID] = ref{i, j}
				}
			}
		}
		eventIDs := make([]string, 0, len(firstEvent))
		for id := range firstEvent {
			eventIDs = append(eventIDs, id)
		}
		sort.Strings(eventIDs)
		eventRecv := make([]time.Time, len(eventIDs))
		for k, id := range eventIDs {
			eventRecv[k] = subs[firstEvent[id].sub].ReceivedAt
		}
		kept := map[ref]bool{}
		if len(eventIDs) > 0 {
			rows, err = tx.Query(ctx, `
				INSERT INTO event_keys (event_id, received_at)
				SELECT * FROM unnest($1::text[], $2::timestamptz[])
				ORDER BY 1
				ON CONFLICT (event_id) DO NOTHING
				RETURNING event_id`, eventIDs, eventRecv)
			if err != nil {
				return err
			}
			newIDs, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			for _, id := range newIDs {
				kept[firstEvent[id]] = true
			}
		}

		// 3. Take sequence numbers. The row lock on log_head is held to
		// commit, so numbers become visible in order.
		if len(kept) > 0 {
			var head int64
			if err := tx.QueryRow(ctx, `UPDATE log_head SET seq = seq + $1 RETURNING seq`, len(kept)).Scan(&head); err != nil {
				return err
			}
			seq := head - int64(len(kept))
			var copyRows [][]any
			for i, sub := range subs {
				if first[sub.BatchID] != i || !isFresh[sub.BatchID] {
					continue
				}
				for j, ev := range sub.Events {
					if !kept[ref{i, j}] {
						continue
					}
					seq++
					out[i].Stored++
					country, subdivision := ev.Location()
					copyRows = append(copyRows, []any{
						seq, sub.ReceivedAt, sub.BatchID, sub.InstallationID, sub.Region,
						country, subdivision, ev.ID, ev.Type, ev.Time, fields[i][j],
						subMicro(sub.ReceivedAt), subMicro(ev.Time),
					})
				}
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, pgx.CopyFromRows(copyRows)); err != nil {
				return err
			}
		}

		// 4. Answers: a new batch keeps its own, a duplicate gets the
		// stored one.
		var dupIDs []string
		for _, id := range ids {
			if !isFresh[id] {
				dupIDs = append(dupIDs, id)
			}
		}
		stored := map[string][]byte{}
		if len(dupIDs) > 0 {
			rows, err := tx.Query(ctx, `SELECT batch_id, response FROM batches WHERE batch_id = ANY($1)`, dupIDs)
			if err != nil {
				return err
			}
			var id string
			var r []byte
			_, err = pgx.ForEachRow(rows, []any{&id, &r}, func() error {
				stored[id] = append([]byte(nil), r...)
				return nil
			})
			if err != nil {
				return err
			}
		}
		for i, sub := range subs {
			switch {
			case first[sub.BatchID] != i:
				out[i].Duplicate = true
				if isFresh[sub.BatchID] {
					out[i].Response = subs[first[sub.BatchID]].Response
				} else {
					out[i].Response = stored[sub.BatchID]
				}
			case isFresh[sub.BatchID]:
				out[i].Response = sub.Response
			default:
				out[i].Duplicate = true
				out[i].Response = stored[sub.BatchID]
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: write: %w", classify(err))
	}
	return out, nil
}
