package rollup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	provision "github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
	"github.com/provisionhq/provision/internal/clock"
)

// DefaultConsumer is the checkpoint name of the rollup consumer.
const DefaultConsumer = "rollup"

// DefaultBatch is how many log records one Apply covers. An Apply costs
// a read and a write per cell it touches, whatever the number of records,
// so a large one is cheaper per record; the records are read readBatch at
// a time, so memory does not grow with it.
const DefaultBatch = 50000

// readBatch is the most records read from the log at once (a variable for
// the tests).
var readBatch = 5000

// Updater moves the rollups forward along the log. It is safe to run
// several updaters on the same store and log: each Apply moves the shared
// checkpoint by compare-and-swap, and a loser re-reads and skips what the
// winner applied, so nothing is counted twice.
type Updater struct {
	Log       provision.Log
	Store     Store
	Consumer  string       // default DefaultConsumer
	Batch     int          // records per Apply, default DefaultBatch
	WeightCap int64        // cap on one record's event.count, default DefaultWeightCap
	Logger    *slog.Logger // nil discards
	// Updated, when set, is called by Run after an update that applied
	// records; the dashboard uses it to rebuild its cached views.
	Updated func(ctx context.Context, st Stats)
}

// Stats says what one Update did.
type Stats struct {
	Records   int   // records folded in
	Applies   int   // transactions committed
	Conflicts int   // applies lost to another worker
	Skipped   int   // records whose certificate could not be read
	Through   int64 // checkpoint at the end
}

func (u *Updater) logger() *slog.Logger {
	if u.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return u.Logger
}

// Update applies every record after the checkpoint up to the log's head as
// it was when Update started, and returns what it did.
func (u *Updater) Update(ctx context.Context) (Stats, error) {
	var st Stats
	consumer, batch, key, err := begin(ctx, u.Store, u.Consumer, u.Batch)
	if err != nil {
		return st, fmt.Errorf("rollup: hash key: %w", err)
	}
	head, err := u.Log.Head(ctx)
	if err != nil {
		return st, fmt.Errorf("rollup: log head: %w", err)
	}
	for {
		from, err := u.Store.Checkpoint(ctx, consumer)
		if err != nil {
			return st, fmt.Errorf("rollup: checkpoint: %w", err)
		}
		st.Through = from
		if from >= head {
			return st, nil
		}
		agg := newAggregator(key, u.WeightCap)
		to, n := from, 0
		for n < batch && to < head {
			read, last, err := u.read(ctx, agg, to, min(batch-n, readBatch))
			if err != nil {
				return st, fmt.Errorf("rollup: read log after %d: %w", to, err)
			}
			if read == 0 {
				break
			}
			to, n = last, n+read
		}
		if n == 0 {
			return st, nil
		}
		err = u.Store.Apply(ctx, consumer, from, to, agg.delta())
		if errors.Is(err, ErrConflict) {
			st.Conflicts++
			continue
		}
		if err != nil {
			return st, fmt.Errorf("rollup: apply %d..%d: %w", from, to, err)
		}
		st.Records += n
		st.Applies++
		st.Skipped += agg.skipped
		st.Through = to
		u.logger().Debug("rollup applied", "from", from, "to", to, "records", n, "cells", len(agg.cells))
	}
}

// read folds up to limit records after the position after into agg, and
// returns how many and the position of the last. A log that hands out its
// stored events (the embedded and PostgreSQL stores) is read in place:
// the rollups need a few fields of each event, not a record with a map.
func (u *Updater) read(ctx context.Context, agg *aggregator, after int64, limit int) (int, int64, error) {
	if er, ok := u.Log.(batchcodec.EventReader); ok {
		last := after
		n, err := er.ReadEvents(ctx, after, limit, func(h *batchcodec.Header, seq int64, v *batchcodec.EventView) error {
			agg.addStored(h, v)
			last = seq
			return nil
		})
		return n, last, err
	}
	recs, err := u.Log.Read(ctx, after, limit)
	if err != nil || len(recs) == 0 {
		return 0, after, err
	}
	for i := range recs {
		agg.add(&recs[i])
	}
	return len(recs), recs[len(recs)-1].Seq, nil
}

// Rebuild drops every rollup and builds them again from the start of the log.
func (u *Updater) Rebuild(ctx context.Context) (Stats, error) {
	if err := u.Store.Reset(ctx); err != nil {
		return Stats{}, fmt.Errorf("rollup: reset: %w", err)
	}
	return u.Update(ctx)
}

func (a *aggregator) delta() Delta {
	d := Delta{Cells: slices.Clone(a.cells), Certs: make([]Cert, 0, len(a.certs))}
	SortCells(d.Cells) // a stable order keeps lock acquisition ordered in SQL stores
	for _, c := range a.certs {
		d.Certs = append(d.Certs, c)
	}
	slices.SortFunc(d.Certs, func(x, y Cert) int { return strings.Compare(x.View+"/"+x.ID, y.View+"/"+y.ID) })
	return d
}

// begin resolves what a pass over the log (an update or a refresh) starts
// from: its consumer and batch size, defaulted, and the store's hash key.
func begin(ctx context.Context, s Store, consumer string, batch int) (string, int, []byte, error) {
	if batch <= 0 {
		batch = DefaultBatch
	}
	key, err := s.HashKey(ctx)
	return cmp(consumer, DefaultConsumer), batch, key, err
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Run updates the rollups every interval until ctx ends; the server runs it
// in the background. An error is logged and retried at the next tick, since
// the log and the store recover by themselves (ErrUnavailable).
func (u *Updater) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("rollup: interval must be positive")
	}
	clock.Every(ctx, every, nil, func(ctx context.Context) {
		st, err := u.Update(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
		case err != nil:
			u.logger().Warn("rollup update failed", "err", err)
		case st.Records > 0:
			u.logger().Info("rollup updated", "records", st.Records, "through", st.Through)
			if u.Updated != nil {
				u.Updated(ctx, st)
			}
		}
	})
	return nil
}
