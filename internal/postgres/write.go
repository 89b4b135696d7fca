package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
)

// Outcome is what writing one submission did.
type Outcome struct {
	// Duplicate is set when the installation wrote this batch id before;
	// nothing of this submission was stored.
	Duplicate bool
	// Response is the answer stored for the batch id: the submission's own
	// for a new batch, the first one's for a duplicate.
	Response []byte
	// Stored counts the events written.
	Stored int
}

// Append implements provision.Log: the submission is committed before it
// returns, and a batch id the installation sent before stores nothing and
// returns the earlier response.
func (s *Store) Append(ctx context.Context, sub *provision.Submission) ([]byte, bool, error) {
	out, err := s.Write(ctx, []*provision.Submission{sub})
	if err != nil {
		return nil, false, err
	}
	return out[0].Response, out[0].Duplicate, nil
}

var batchColumnNames = []string{
	"seq_end", "seq_first", "events", "batch_id", "installation_id", "region",
	"received_at", "received_at_nanos", "day_min", "day_max", "types", "payload",
}

// subMicro is the part of t that timestamptz does not keep.
func subMicro(t time.Time) int16 { return int16(t.Nanosecond() % 1000) }

// batchKey is a batch's idempotence key: batch ids are scoped to their
// installation.
type batchKey struct{ installation, batch string }

func keyOf(s *provision.Submission) batchKey { return batchKey{s.InstallationID, s.BatchID} }

func compareKeys(a, b batchKey) int {
	if c := strings.Compare(a.installation, b.installation); c != 0 {
		return c
	}
	return strings.Compare(a.batch, b.batch)
}

// Write stores many submissions in one transaction, in order, and returns
// one outcome per submission. Each new batch is one row of log_batches
// (COPY), its events encoded and compressed together, and one row of
// batch_keys. It is idempotent per installation and batch id: writing the
// same submissions again, as a worker does after a crash between commit and
// acknowledgement, stores nothing new.
func (s *Store) Write(ctx context.Context, subs []*provision.Submission) ([]Outcome, error) {
	return s.WriteEncoded(ctx, subs, nil)
}

// WriteEncoded is Write for submissions whose events are already in their
// stored form: enc[i], when enc is not nil and enc[i] is not nil, stands
// for subs[i].Events, which are then not looked at. Workers use it with the
// bytes ingest encoded, so the events are never decoded on their way.
func (s *Store) WriteEncoded(ctx context.Context, subs []*provision.Submission, enc []*batchcodec.Encoded) ([]Outcome, error) {
	out := make([]Outcome, len(subs))
	if len(subs) == 0 {
		return out, nil
	}
	if enc != nil && len(enc) != len(subs) {
		return nil, fmt.Errorf("postgres: write: %d encoded batches for %d submissions", len(enc), len(subs))
	}
	// Encode and compress before the transaction, so a bad value fails the
	// call without holding locks.
	batches := make([]*batchcodec.Encoded, len(subs))
	first := make(map[batchKey]int, len(subs))
	var times []time.Time
	for i, sub := range subs {
		if sub == nil || sub.BatchID == "" {
			return nil, fmt.Errorf("postgres: write: submission %d has no batch id", i)
		}
		if sub.Response == nil {
			return nil, fmt.Errorf("postgres: write: submission %d has no response", i)
		}
		if _, ok := first[keyOf(sub)]; ok {
			continue // the first occurrence of a key in this call stands for all
		}
		first[keyOf(sub)] = i
		if enc != nil && enc[i] != nil {
			batches[i] = enc[i]
		} else {
			var err error
			if batches[i], err = batchcodec.EncodeEvents(sub.Events); err != nil {
				return nil, fmt.Errorf("postgres: write: submission %d: %w", i, err)
			}
		}
		if batches[i] != nil {
			times = append(times, sub.ReceivedAt)
		}
	}
	if err := s.ensurePartitions(ctx, times); err != nil {
		return nil, err
	}

	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for i := range out {
			out[i] = Outcome{}
		}
		// 1. Claim the keys, in a fixed order so that concurrent writers
		// lock rows in the same order and cannot deadlock.
		keys := make([]batchKey, 0, len(first))
		for k := range first {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareKeys)
		insts, ids := make([]string, len(keys)), make([]string, len(keys))
		recv, resp := make([]time.Time, len(keys)), make([][]byte, len(keys))
		for k, key := range keys {
			sub := subs[first[key]]
			insts[k], ids[k], recv[k], resp[k] = key.installation, key.batch, sub.ReceivedAt, sub.Response
		}
		rows, err := tx.Query(ctx, `
			INSERT INTO batch_keys (installation_id, batch_id, received_at, response)
			SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bytea[])
			ORDER BY 1, 2
			ON CONFLICT (installation_id, batch_id) DO NOTHING
			RETURNING installation_id, batch_id`, insts, ids, recv, resp)
		if err != nil {
			return err
		}
		fresh := map[batchKey]bool{}
		var k batchKey
		if _, err := pgx.ForEachRow(rows, []any{&k.installation, &k.batch}, func() error {
			fresh[k] = true
			return nil
		}); err != nil {
			return err
		}

		// 2. Take positions for the new batches' events. The row lock on
		// log_head is held to commit, so positions become visible in order.
		var total int64
		for i, sub := range subs {
			if first[keyOf(sub)] == i && fresh[keyOf(sub)] && batches[i] != nil {
				total += batches[i].Summary.Last + 1
			}
		}
		if total > 0 {
			var head int64
			if err := tx.QueryRow(ctx, `UPDATE log_head SET seq = seq + $1 RETURNING seq`, total).Scan(&head); err != nil {
				return err
			}
			next := head - total + 1
			var copyRows [][]any
			for i, sub := range subs {
				b := batches[i]
				if first[keyOf(sub)] != i || !fresh[keyOf(sub)] || b == nil {
					continue
				}
				end := next + b.Summary.Last
				copyRows = append(copyRows, []any{
					end, next, b.Events, sub.BatchID, sub.InstallationID, sub.Region,
					sub.ReceivedAt, subMicro(sub.ReceivedAt), b.Summary.DayMin, b.Summary.DayMax, b.Summary.Types, b.Payload,
				})
				next = end + 1
				out[i].Stored = b.Events
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"log_batches"}, batchColumnNames, pgx.CopyFromRows(copyRows)); err != nil {
				return err
			}
		}

		// 3. Answers: a new batch keeps its own, a duplicate gets the
		// stored one. A key neither new nor stored was refused by the
		// erasure trigger: nothing is stored and the batch is answered as
		// if it were, so the agent forgets it.
		var dupInsts, dupIDs []string
		for _, key := range keys {
			if !fresh[key] {
				dupInsts, dupIDs = append(dupInsts, key.installation), append(dupIDs, key.batch)
			}
		}
		stored := map[batchKey][]byte{}
		if len(dupIDs) > 0 {
			rows, err := tx.Query(ctx, `SELECT k.installation_id, k.batch_id, k.response FROM batch_keys k
				JOIN unnest($1::text[], $2::text[]) AS d(installation_id, batch_id) USING (installation_id, batch_id)`, dupInsts, dupIDs)
			if err != nil {
				return err
			}
			var r []byte
			if _, err := pgx.ForEachRow(rows, []any{&k.installation, &k.batch, &r}, func() error {
				stored[k] = append([]byte(nil), r...)
				return nil
			}); err != nil {
				return err
			}
		}
		for i, sub := range subs {
			key := keyOf(sub)
			earlier, found := stored[key]
			switch {
			case first[key] != i:
				out[i].Duplicate = true
				if fresh[key] || !found {
					out[i].Response = subs[first[key]].Response
				} else {
					out[i].Response = earlier
				}
			case fresh[key] || !found:
				out[i].Response = sub.Response
			default:
				out[i].Duplicate = true
				out[i].Response = earlier
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: write: %w", classify(err))
	}
	return out, nil
}
