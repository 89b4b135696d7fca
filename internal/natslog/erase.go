package natslog

import (
	"bytes"
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// eraseFrom erases the installation's messages from every message the
// stream holds, with JetStream's secure erase, which overwrites the message
// in the stream's store instead of only marking it deleted. Messages that
// cannot be decoded (dead letters of malformed input) are matched on their
// raw bytes.
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
