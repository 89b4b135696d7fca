package rollup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	provision "github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/clock"
)

// DayStore is a Store whose cells of given days can be replaced and whose
// old cells can be dropped. The SQLite, PostgreSQL and memory stores
// implement it.
type DayStore interface {
	Store
	// ReplaceDays replaces, in one transaction, every cell of the days by
	// the cells of d (all of those days), provided consumer's checkpoint
	// is still through; otherwise it changes nothing and returns
	// ErrConflict. Certificates are left as they are.
	ReplaceDays(ctx context.Context, consumer string, through int64, days []string, d Delta) error
	// DropBefore deletes the cells of days before day (YYYY-MM-DD) and the
	// certificates that expired before it, and returns how many rows went.
	DropBefore(ctx context.Context, day string) (int64, error)
}

// Refresher recomputes the cells of the days an erasure touched, so counts
// and dimension values stop including an erased installation without a
// manual rebuild. Erasures mark days (Mark); Run refreshes the marked days
// together every interval, so a thousand erasures of the same week cost one
// pass over the log, not a thousand: the cost of a pass is one read of the
// log up to the checkpoint and one transaction that rewrites the marked
// days' cells.
//
// With a MarkStore the marks are kept in the store: held before an
// erasure deletes anything, due once it completed, dropped after the pass
// that recomputed their days, so a process that stops in between refreshes
// them when it starts again. Without one they are kept in memory, and a
// stop before the pass leaves the cells counting the erased installation
// until `provision rollup rebuild`; the raw events are gone either way.
type Refresher struct {
	Log       provision.Log
	Store     DayStore
	Consumer  string // default DefaultConsumer
	Batch     int    // records per read, default 5000
	WeightCap int64
	Logger    *slog.Logger
	// Marks, when set, keeps the marks durably (see MarkStore).
	Marks MarkStore

	mu   sync.Mutex
	days map[string]bool
	held map[string][]string // in memory, without Marks: request -> days
}

// HoldDays records the days an erasure request is about to touch; they are
// refreshed only once ReleaseDays says the request completed.
func (f *Refresher) HoldDays(ctx context.Context, request string, days []string) error {
	if f.Marks != nil {
		return f.Marks.MarkDays(ctx, request, days, false)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held == nil {
		f.held = map[string][]string{}
	}
	f.held[request] = append(f.held[request], days...)
	return nil
}

// ReleaseDays marks for the next pass the days the request held and days.
func (f *Refresher) ReleaseDays(ctx context.Context, request string, days []string) error {
	if f.Marks != nil {
		return f.Marks.MarkDays(ctx, request, days, true)
	}
	f.mu.Lock()
	held := f.held[request]
	delete(f.held, request)
	f.mu.Unlock()
	f.Mark(append(held, days...))
	return nil
}

// Mark asks for the days to be refreshed at the next pass.
func (f *Refresher) Mark(days []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.days == nil {
		f.days = map[string]bool{}
	}
	for _, d := range days {
		f.days[d] = true
	}
}

// Pending returns the days marked and not yet refreshed.
func (f *Refresher) Pending(ctx context.Context) ([]string, error) {
	f.mu.Lock()
	days := maps.Clone(f.days)
	f.mu.Unlock()
	if days == nil {
		days = map[string]bool{}
	}
	if f.Marks != nil {
		due, err := f.Marks.DueDays(ctx)
		if err != nil {
			return nil, fmt.Errorf("rollup refresh: marks: %w", err)
		}
		for _, m := range due {
			days[m.Day] = true
		}
	}
	return slices.Sorted(maps.Keys(days)), nil
}

func (f *Refresher) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	days := slices.Sorted(maps.Keys(f.days))
	f.days = nil
	return days
}

// Refresh recomputes the marked days now and returns how many it did.
// On failure the days stay marked.
func (f *Refresher) Refresh(ctx context.Context) (int, error) {
	var due []DayMark
	if f.Marks != nil {
		var err error
		if due, err = f.Marks.DueDays(ctx); err != nil {
			return 0, fmt.Errorf("rollup refresh: marks: %w", err)
		}
	}
	mem := f.take()
	set := map[string]bool{}
	for _, d := range mem {
		set[d] = true
	}
	for _, m := range due {
		set[m.Day] = true
	}
	days := slices.Sorted(maps.Keys(set))
	if len(days) == 0 {
		return 0, nil
	}
	if err := f.refresh(ctx, days); err != nil {
		f.Mark(mem)
		return 0, err
	}
	// Marks released while this pass ran are not among due: they stay for
	// the next pass.
	if len(due) > 0 {
		if err := f.Marks.DropMarks(ctx, due); err != nil {
			return 0, fmt.Errorf("rollup refresh: drop marks: %w", err)
		}
	}
	return len(days), nil
}

func (f *Refresher) refresh(ctx context.Context, days []string) error {
	consumer := cmp(f.Consumer, DefaultConsumer)
	batch := f.Batch
	if batch <= 0 {
		batch = readBatch
	}
	key, err := f.Store.HashKey(ctx)
	if err != nil {
		return fmt.Errorf("rollup refresh: hash key: %w", err)
	}
	want := map[string]bool{}
	for _, d := range days {
		want[d] = true
	}
	for attempt := 0; ; attempt++ {
		through, err := f.Store.Checkpoint(ctx, consumer)
		if err != nil {
			return fmt.Errorf("rollup refresh: checkpoint: %w", err)
		}
		agg := newAggregator(key, f.WeightCap)
		for after := int64(0); after < through; {
			recs, err := f.Log.Read(ctx, after, batch)
			if err != nil {
				return fmt.Errorf("rollup refresh: read log after %d: %w", after, err)
			}
			if len(recs) == 0 {
				break
			}
			for i := range recs {
				if recs[i].Seq > through {
					break
				}
				if want[Day(&recs[i])] {
					agg.add(&recs[i])
				}
			}
			after = recs[len(recs)-1].Seq
		}
		d := agg.delta()
		d.Certs = nil
		err = f.Store.ReplaceDays(ctx, consumer, through, days, d)
		if errors.Is(err, ErrConflict) && attempt < 10 {
			continue // the updater moved on meanwhile: read again
		}
		if err != nil {
			return fmt.Errorf("rollup refresh: replace %d days: %w", len(days), err)
		}
		f.logger().Info("rollups refreshed after erasure", "days", len(days), "through", through)
		return nil
	}
}

func (f *Refresher) logger() *slog.Logger {
	if f.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return f.Logger
}

// Run refreshes the marked days every interval until ctx ends, so the
// erasures of one interval share one pass. Errors are logged and the days
// retried at the next pass.
func (f *Refresher) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = time.Minute
	}
	clock.Every(ctx, every, nil, func(ctx context.Context) {
		if _, err := f.Refresh(ctx); err != nil && ctx.Err() == nil {
			f.logger().Warn("rollup refresh failed; retrying", "err", err)
		}
	})
	return nil
}
