package natslog

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Erasure without reading the whole stream. The workers record, in
// PostgreSQL, each message of the submission stream they are done with
// (stored, duplicate or dead-lettered) before they acknowledge it, so
// erasure deletes:
//
//   - the recorded messages of the installation, by sequence (EraseMsgs);
//   - among the messages after the lowest acknowledgement floor of the
//     workers' consumers, which may not be recorded yet, those of the
//     installation (EraseUnconsumed): a short tail while workers keep up;
//   - its dead letters, by reading the dead-letter stream, which holds
//     only what workers could not store (EraseDeadLetters).
//
// A message a worker receives after the erasure began is refused by the
// store's tombstone, and the worker deletes it from the stream itself.

// EraseMsgs deletes the submission stream's messages at seqs with secure
// erase and returns how many it deleted; a message already gone (deleted
// before, or aged out) is skipped.
func (l *Log) EraseMsgs(ctx context.Context, seqs []uint64) (int64, error) {
	var n int64
	for _, seq := range seqs {
		err := l.stream.SecureDeleteMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("natslog: erase message %d: %w", seq, unavailable(err))
		}
		n++
	}
	return n, nil
}

// EraseMsgs is Log.EraseMsgs, for a worker that must delete a message it
// received after its installation's erasure began.
func (c *Consumer) EraseMsgs(ctx context.Context, seqs []uint64) (int64, error) {
	return c.l.EraseMsgs(ctx, seqs)
}

// EraseUnconsumed erases the installation's messages after the lowest
// acknowledgement floor of the submission stream's durable consumers
// (every message, when there is none), and returns how many went.
func (l *Log) EraseUnconsumed(ctx context.Context, installationID string) (int64, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("natslog: erase: %w", unavailable(err))
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	floor, err := l.ackFloor(ctx)
	if err != nil {
		return 0, err
	}
	n, err := eraseRange(ctx, l.stream, installationID, max(floor+1, info.State.FirstSeq), info.State.LastSeq)
	if err != nil {
		return n, fmt.Errorf("natslog: erase from %s: %w", l.cfg.Stream, err)
	}
	return n, nil
}

// ackFloor is the lowest stream sequence below which every durable
// consumer with explicit acknowledgement acknowledged every message; 0
// when there is no such consumer.
func (l *Log) ackFloor(ctx context.Context) (uint64, error) {
	lister := l.stream.ListConsumers(ctx)
	floor, found := uint64(0), false
	for ci := range lister.Info() {
		if ci.Config.Durable == "" || ci.Config.AckPolicy != jetstream.AckExplicitPolicy {
			continue
		}
		if !found || ci.AckFloor.Stream < floor {
			floor, found = ci.AckFloor.Stream, true
		}
	}
	if err := lister.Err(); err != nil {
		return 0, fmt.Errorf("natslog: consumers: %w", unavailable(err))
	}
	return floor, nil
}

// EraseDeadLetters erases the installation's messages from the
// dead-letter stream, reading all of it, and returns how many went.
func (l *Log) EraseDeadLetters(ctx context.Context, installationID string) (int64, error) {
	s, err := l.js.Stream(ctx, l.cfg.DeadStream)
	if err != nil {
		return 0, fmt.Errorf("natslog: erase: stream %s: %w", l.cfg.DeadStream, unavailable(err))
	}
	n, err := eraseFrom(ctx, s, installationID)
	if err != nil {
		return n, fmt.Errorf("natslog: erase from %s: %w", l.cfg.DeadStream, err)
	}
	return n, nil
}

// FirstSeq is the oldest message the submission stream holds; records of
// messages before it can be forgotten.
func (l *Log) FirstSeq(ctx context.Context) (uint64, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("natslog: stream %s: %w", l.cfg.Stream, unavailable(err))
	}
	return info.State.FirstSeq, nil
}
