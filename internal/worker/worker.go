// Package worker moves submissions from the replicated log into the
// PostgreSQL store. Workers share a durable JetStream consumer, write what
// they fetch in one transaction and acknowledge only after the commit, so a
// worker killed at any point loses nothing (the messages come again after
// AckWait) and duplicates nothing (the store skips batch and event ids it
// has).
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
	"github.com/provisionhq/provision/internal/clock"
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/privacy"
)

// Store is where the worker writes: postgres.Store. The events travel in
// their stored form from ingest (natslog.Delivery.Encoded) and are written
// without being decoded.
type Store interface {
	WriteEncoded(ctx context.Context, subs []*provision.Submission, enc []*batchcodec.Encoded) ([]postgres.Outcome, error)
}

// StreamRecorder is a Store that records which installation each message
// of the stream belongs to (postgres.Store), so that erasure deletes
// exactly the installation's messages. The worker records every message it
// is done with before acknowledging it.
type StreamRecorder interface {
	// RecordStreamMessages records the messages and returns those whose
	// installation is tombstoned.
	RecordStreamMessages(ctx context.Context, idHashes []string, seqs []uint64) ([]uint64, error)
	// ForgetStreamMessages deletes the records of deleted messages.
	ForgetStreamMessages(ctx context.Context, seqs []uint64) error
}

// Config tunes one worker.
type Config struct {
	// Batch is the most messages written in one transaction.
	Batch int
	// FetchWait is how long one fetch waits for messages.
	FetchWait time.Duration
	// RetryMin and RetryMax bound the backoff while the store is
	// unavailable. Messages are kept (and their AckWait extended) meanwhile,
	// so an outage does not use up their deliveries.
	RetryMin, RetryMax time.Duration
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the settings used by `provision worker`.
func DefaultConfig() Config {
	return Config{Batch: 500, FetchWait: time.Second, RetryMin: 50 * time.Millisecond, RetryMax: 2 * time.Second}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	var errs []error
	if c.Batch < 1 || c.Batch > 10000 {
		errs = append(errs, fmt.Errorf("worker.batch: %d is outside 1..10000", c.Batch))
	}
	if c.FetchWait <= 0 {
		errs = append(errs, errors.New("worker.fetch_wait: must be positive"))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("worker.retry: need 0 < min <= max"))
	}
	return errors.Join(errs...)
}

// DefaultLoops is how many workers `provision worker` runs on one consumer
// and store by default (its --concurrency): while one waits on its commit,
// another fetches and writes.
const DefaultLoops = 2

// Stats counts what a worker did.
type Stats struct {
	Messages     int64 // messages acknowledged after a commit
	Events       int64 // events stored
	Duplicates   int64 // messages whose batch was already stored
	DeadLettered int64 // messages moved to the dead-letter stream
	StoreRetries int64 // writes retried because the store was unavailable
	Erased       int64 // messages deleted from the stream: their installation was erased
}

// Worker consumes one durable consumer into one store.
type Worker struct {
	cons  *natslog.Consumer
	store Store
	cfg   Config
	log   *slog.Logger

	messages, events, duplicates, dead, retries, erased atomic.Int64
}

// New returns a worker; Run starts it.
func New(cons *natslog.Consumer, store Store, cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Worker{cons: cons, store: store, cfg: cfg, log: logger}, nil
}

// Stats returns the counters so far.
func (w *Worker) Stats() Stats {
	return Stats{
		Messages: w.messages.Load(), Events: w.events.Load(), Duplicates: w.duplicates.Load(),
		DeadLettered: w.dead.Load(), StoreRetries: w.retries.Load(), Erased: w.erased.Load(),
	}
}

// Run fetches and writes until ctx ends. Messages in hand when it ends are
// not acknowledged; JetStream delivers them again.
func (w *Worker) Run(ctx context.Context) error {
	backoff := w.cfg.RetryMin
	for ctx.Err() == nil {
		ds, err := w.cons.Fetch(ctx, w.cfg.Batch, w.cfg.FetchWait)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			w.log.Warn("fetch failed", "err", err)
			backoff = w.sleep(ctx, backoff)
			continue
		}
		backoff = w.cfg.RetryMin
		good := ds[:0]
		for _, d := range ds {
			if d.Err != nil {
				w.deadLetter(ctx, d, d.Err)
				continue
			}
			good = append(good, d)
		}
		if len(good) > 0 {
			w.write(ctx, good)
		}
	}
	return nil
}

// write stores the deliveries in one transaction and acknowledges them. An
// unavailable store is waited out; any other failure is narrowed down to the
// message that causes it.
func (w *Worker) write(ctx context.Context, ds []*natslog.Delivery) {
	subs := make([]*provision.Submission, len(ds))
	enc := make([]*batchcodec.Encoded, len(ds))
	for i, d := range ds {
		subs[i], enc[i] = d.Submission, d.Encoded
	}
	backoff := w.cfg.RetryMin
	for {
		out, err := w.store.WriteEncoded(ctx, subs, enc)
		if err == nil {
			// Recorded after the commit and before the ack: a crash in
			// between writes nothing twice and records again.
			_, err = w.record(ctx, ds)
		}
		if err == nil {
			for i, d := range ds {
				if out[i].Duplicate {
					w.duplicates.Add(1)
				}
				w.events.Add(int64(out[i].Stored))
				if err := d.Ack(); err != nil {
					// Delivered again later and skipped by the store.
					w.log.Warn("ack failed", "stream_seq", d.StreamSeq, "err", err)
					continue
				}
				w.messages.Add(1)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, provision.ErrUnavailable) {
			w.retries.Add(1)
			w.log.Warn("store unavailable, retrying", "messages", len(ds), "err", err)
			for _, d := range ds {
				_ = d.InProgress()
			}
			backoff = w.sleep(ctx, backoff)
			continue
		}
		if len(ds) > 1 {
			w.log.Warn("batch failed, writing its messages one by one", "messages", len(ds), "err", err)
			for _, d := range ds {
				w.write(ctx, []*natslog.Delivery{d})
			}
			return
		}
		d := ds[0]
		if d.LastAttempt() {
			w.deadLetter(ctx, d, err)
			return
		}
		w.log.Warn("message failed, will retry", "stream_seq", d.StreamSeq, "attempt", d.Attempt, "err", err)
		_ = d.Retry(w.cfg.RetryMax)
		return
	}
}

func (w *Worker) deadLetter(ctx context.Context, d *natslog.Delivery, reason error) {
	if d.Submission != nil {
		erased, err := w.record(ctx, []*natslog.Delivery{d})
		if err != nil {
			// Not acknowledged: it comes again.
			w.log.Warn("recording a message before its dead letter failed", "stream_seq", d.StreamSeq, "err", err)
			return
		}
		if erased[d.StreamSeq] {
			// Its installation was erased: no copy is made.
			_ = d.Ack()
			return
		}
	}
	if err := d.DeadLetter(ctx, reason); err != nil {
		// Not acknowledged: it comes again and is dead-lettered then.
		w.log.Warn("dead letter failed", "stream_seq", d.StreamSeq, "err", err)
		return
	}
	if d.Submission == nil {
		// A message that cannot be decoded names no installation the
		// store can record; erasure reads the dead-letter stream, which
		// now holds its copy, so the original goes.
		if _, err := w.cons.EraseMsgs(ctx, []uint64{d.StreamSeq}); err != nil {
			w.log.Warn("deleting a dead-lettered message from the stream failed", "stream_seq", d.StreamSeq, "err", err)
		}
	}
	w.dead.Add(1)
	w.log.Error("message moved to the dead-letter stream", "stream_seq", d.StreamSeq, "reason", reason)
}

// record records the deliveries' messages in a StreamRecorder store and
// deletes from the stream those whose installation was erased (the store
// refused their events), returning their sequences.
func (w *Worker) record(ctx context.Context, ds []*natslog.Delivery) (map[uint64]bool, error) {
	rec, ok := w.store.(StreamRecorder)
	if !ok {
		return nil, nil
	}
	hashes := make([]string, 0, len(ds))
	seqs := make([]uint64, 0, len(ds))
	for _, d := range ds {
		if d.Submission != nil {
			hashes = append(hashes, privacy.IDHash(d.Submission.InstallationID))
			seqs = append(seqs, d.StreamSeq)
		}
	}
	gone, err := rec.RecordStreamMessages(ctx, hashes, seqs)
	if err != nil || len(gone) == 0 {
		return nil, err
	}
	n, err := w.cons.EraseMsgs(ctx, gone)
	if err != nil {
		return nil, err
	}
	if err := rec.ForgetStreamMessages(ctx, gone); err != nil {
		return nil, err
	}
	w.erased.Add(n)
	out := make(map[uint64]bool, len(gone))
	for _, seq := range gone {
		out[seq] = true
	}
	return out, nil
}

// sleep waits for backoff with jitter and returns the next backoff.
func (w *Worker) sleep(ctx context.Context, backoff time.Duration) time.Duration {
	d := backoff/2 + rand.N(backoff/2+1)
	_ = clock.Sleep(ctx, d) // a cancelled ctx is seen by the caller's loop
	return min(2*backoff, w.cfg.RetryMax)
}
