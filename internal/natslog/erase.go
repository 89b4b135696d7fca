package natslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Erase removes every message of the installation from the submission
// stream and from the dead-letter stream with JetStream's secure erase,
// which overwrites the message in the stream's store instead of only
// marking it deleted, and returns how many went.
//
// It reads every message the streams still hold (at most their max-age of
// submissions), so one call costs one pass over the streams; messages that
// cannot be decoded (dead letters of malformed input) are matched on their
// raw bytes.
func (l *Log) Erase(ctx context.Context, installationID string) (int64, error) {
	var n int64
	for _, name := range l.Streams() {
		s, err := l.js.Stream(ctx, name)
		if err != nil {
			return n, fmt.Errorf("natslog: erase: stream %s: %w", name, unavailable(err))
		}
		m, err := eraseFrom(ctx, s, installationID)
		n += m
		if err != nil {
			return n, fmt.Errorf("natslog: erase from %s: %w", name, err)
		}
	}
	return n, nil
}

func eraseFrom(ctx context.Context, s jetstream.Stream, installationID string) (int64, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return 0, unavailable(err)
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	return eraseRange(ctx, s, installationID, info.State.FirstSeq, info.State.LastSeq)
}

// eraseRange erases the installation's messages among those at from..to.
func eraseRange(ctx context.Context, s jetstream.Stream, installationID string, from, to uint64) (int64, error) {
	var n int64
	for seq := max(from, 1); seq <= to; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return n, unavailable(err)
		}
		match := bytes.Contains(raw.Data, []byte(installationID))
		if sub, _, err := decode(raw.Data); err == nil {
			match = sub.InstallationID == installationID
		}
		if !match {
			continue
		}
		if err := s.SecureDeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return n, unavailable(err)
		}
		n++
	}
	return n, nil
}
