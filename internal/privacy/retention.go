package privacy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/provisionhq/provision/internal/clock"
	"github.com/provisionhq/provision/internal/manifest"
)

// Clock is the time source of the retention job; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends, whichever is first, and
	// returns ctx's error in the second case.
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep implements Clock.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error { return clock.Sleep(ctx, d) }

// Retention purges raw data once the manifest's retention for it has
// passed. Ages are measured from the event time, by UTC day.
//
// One event can carry items with different retention (a tls_connection
// event keeps its certificate 180 days but its count and location 395).
// The job then strips each item from the stored event once the item's own
// retention has passed, and deletes the event once the longest retention
// among its items has passed — or sooner, when the installation id stored
// beside it has a shorter retention, because the id may be kept no longer
// than declared and an event without it is not kept either.
//
// Work is done in chunks of Chunk events, each its own short transaction,
// with Pause between chunks, so ingest, which waits for the same writer
// lock, is never held up for long.
type Retention struct {
	Store    Store
	Manifest *manifest.Manifest
	Clock    Clock         // nil: SystemClock
	Chunk    int           // events per transaction; default DefaultChunk
	Pause    time.Duration // between chunks; default 20ms
	Interval time.Duration // between runs in Run; default 1h
	Logger   *slog.Logger  // nil: discard
	// Eraser, when set, has each pass also finish erasures that were
	// begun but not completed (Service.Resume).
	Eraser *Service
	// Owners, when set, has each pass also run the retention of every
	// registered owner (derived data: rollup cells and certificates, dead
	// letters).
	Owners *Registry
}

// RetentionStats says what one pass did.
type RetentionStats struct {
	Purged   map[string]int64 // events deleted, by event type
	Stripped map[string]int64 // events visited to strip expired items, by event type
	Chunks   int              // transactions run
	Resumed  int              // interrupted erasures finished
	Owners   map[string]int64 // records dropped by owners' retention, by owner
}

// rule is one retention action for one event type.
type rule struct {
	eventType string
	after     time.Duration
	items     []string // nil: delete the event; else strip these items
}

func (r rule) key() string {
	return "strip:" + r.eventType + ":" + strconv.FormatInt(int64(r.after/time.Hour), 10) + "h:" + strings.Join(r.items, ",")
}

// Rules derives the retention actions from the manifest.
func rules(m *manifest.Manifest) []rule {
	var idRetention time.Duration = -1
	if it := m.Item(InstallationItem); it != nil {
		idRetention = it.Retention()
	}
	var out []rule
	for _, et := range m.EventTypes {
		if et.ID == manifest.BatchEvent {
			continue
		}
		purge := m.MaxRetention(et.ID)
		if idRetention >= 0 && idRetention < purge {
			purge = idRetention
		}
		byAge := map[time.Duration][]string{}
		for _, it := range m.Items {
			if m.InEvent(it, et.ID) && it.Retention() < purge {
				byAge[it.Retention()] = append(byAge[it.Retention()], it.ID)
			}
		}
		ages := make([]time.Duration, 0, len(byAge))
		for a := range byAge {
			ages = append(ages, a)
		}
		slices.Sort(ages)
		for _, a := range ages {
			items := byAge[a]
			slices.Sort(items)
			out = append(out, rule{eventType: et.ID, after: a, items: items})
		}
		out = append(out, rule{eventType: et.ID, after: purge})
	}
	return out
}

func (j *Retention) defaults() (Clock, int, time.Duration, *slog.Logger) {
	c := j.Clock
	if c == nil {
		c = SystemClock{}
	}
	chunk := j.Chunk
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	pause := j.Pause
	if pause <= 0 {
		pause = 20 * time.Millisecond
	}
	lg := j.Logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, chunk, pause, lg
}

// RunOnce applies every rule once, up to the clock's now.
func (j *Retention) RunOnce(ctx context.Context) (RetentionStats, error) {
	st := RetentionStats{Purged: map[string]int64{}, Stripped: map[string]int64{}}
	if j.Store == nil || j.Manifest == nil {
		return st, errors.New("retention: Store and Manifest are required")
	}
	clk, chunk, pause, lg := j.defaults()
	if j.Eraser != nil {
		n, err := j.Eraser.Resume(ctx)
		st.Resumed = n
		if err != nil {
			return st, err
		}
	}
	now := clk.Now().UTC()
	first := true
	wait := func() error {
		if first {
			first = false
			return nil
		}
		return clk.Sleep(ctx, pause)
	}
	for _, r := range rules(j.Manifest) {
		before := now.Add(-r.after)
		if r.items == nil {
			for {
				if err := wait(); err != nil {
					return st, err
				}
				n, err := j.Store.PurgeEvents(ctx, r.eventType, before, chunk)
				if err != nil {
					return st, fmt.Errorf("retention: purge %s: %w", r.eventType, err)
				}
				st.Chunks++
				st.Purged[r.eventType] += n
				if n < int64(chunk) {
					break
				}
			}
			continue
		}
		// Events can arrive long after their event time (an agent that was
		// offline), so a strip rule covers two ranges: every event appended
		// since the last pass whose day has expired, and every event
		// appended before it whose day expired since the last pass. Each
		// range is an index range; together they miss nothing.
		key := r.key()
		through, markSeq, err := j.Store.RetentionMark(ctx, key)
		if err != nil {
			return st, fmt.Errorf("retention: %w", err)
		}
		newSeq, err := j.strip(ctx, &st, r, time.Time{}, before, markSeq, chunk, wait)
		if err != nil {
			return st, err
		}
		if !through.IsZero() && through.Before(before) {
			if _, err := j.strip(ctx, &st, r, through, before, 0, chunk, wait); err != nil {
				return st, err
			}
		}
		if err := j.Store.SetRetentionMark(ctx, key, before, newSeq); err != nil {
			return st, fmt.Errorf("retention: %w", err)
		}
	}
	if j.Owners != nil {
		owned, err := j.Owners.RetainOwners(ctx, now)
		st.Owners = owned
		if err != nil {
			return st, fmt.Errorf("retention: %w", err)
		}
	}
	lg.Info("retention pass done", "chunks", st.Chunks)
	return st, nil
}

// strip applies one strip rule over one range in chunks and returns the
// highest Seq visited.
func (j *Retention) strip(ctx context.Context, st *RetentionStats, r rule, from, before time.Time, after int64, chunk int, wait func() error) (int64, error) {
	for {
		if err := wait(); err != nil {
			return after, err
		}
		last, n, err := j.Store.StripFields(ctx, r.eventType, r.items, from, before, after, chunk)
		if err != nil {
			return after, fmt.Errorf("retention: strip %s: %w", r.eventType, err)
		}
		st.Chunks++
		st.Stripped[r.eventType] += int64(n)
		after = last
		if n < chunk {
			return after, nil
		}
	}
}

// Run applies the rules every Interval until ctx ends, and returns nil
// then. A failed pass is logged and retried at the next interval.
func (j *Retention) Run(ctx context.Context) error {
	clk, _, _, lg := j.defaults()
	interval := j.Interval
	if interval <= 0 {
		interval = time.Hour
	}
	for {
		if _, err := j.RunOnce(ctx); err != nil && ctx.Err() == nil {
			lg.Warn("retention pass failed", "err", err)
		}
		if err := clk.Sleep(ctx, interval); err != nil {
			return nil
		}
	}
}
