package natslog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
)

// lookupTimeout bounds the store lookup for resends after the window.
const lookupTimeout = 250 * time.Millisecond

// Append implements provision.Log: it returns once JetStream has stored the
// submission (on a quorum of replicas). A batch id JetStream has seen within
// its duplicate window stores nothing and returns the first answer. When all
// publish slots stay busy for SlotWait, or JetStream does not answer in
// PublishTimeout, it returns provision.ErrUnavailable rather than queueing.
func (l *Log) Append(ctx context.Context, s *provision.Submission) ([]byte, bool, error) {
	body, err := encode(s)
	if err != nil {
		return nil, false, err
	}
	if max := l.nc.MaxPayload(); max > 0 && int64(len(body)) > max {
		// Permanent for this server: its max_payload (1 MiB by default)
		// must be raised to take the largest batches ingest admits.
		return nil, false, fmt.Errorf("natslog: append: submission is %d bytes compressed, the NATS server's max_payload is %d", len(body), max)
	}
	if l.cfg.Responses != nil {
		// A resend after the duplicate window: the store has the answer.
		// Bounded: a slow store must not hold up ingest.
		lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		resp, err := l.cfg.Responses.LookupResponse(lctx, s.InstallationID, s.BatchID)
		cancel()
		switch {
		case err == nil:
			return resp, true, nil
		case !errors.Is(err, provision.ErrNotFound):
			// The store being down must not stop ingest; the workers
			// still drop the duplicate when they write.
			l.log.Debug("response lookup failed", "err", err)
		}
	}

	timer := time.NewTimer(l.cfg.SlotWait)
	defer timer.Stop()
	select {
	case l.slots <- struct{}{}:
	case <-timer.C:
		return nil, false, fmt.Errorf("natslog: append: %w: %d publishes in flight", provision.ErrUnavailable, cap(l.slots))
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	defer func() { <-l.slots }()

	pctx, cancel := context.WithTimeout(ctx, l.cfg.PublishTimeout)
	defer cancel()
	msg := nats.NewMsg(l.cfg.Subject)
	msg.Data = body
	ack, err := l.js.PublishMsg(pctx, msg, jetstream.WithMsgID(msgID(s)), jetstream.WithExpectStream(l.cfg.Stream))
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if errors.Is(err, nats.ErrMaxPayload) {
			return nil, false, fmt.Errorf("natslog: append: %w", err)
		}
		return nil, false, fmt.Errorf("natslog: append: %w", unavailable(err))
	}
	if !ack.Duplicate {
		return s.Response, false, nil
	}
	// JetStream names the sequence of the first message with this id.
	first, _, err := l.get(ctx, ack.Sequence)
	if err != nil {
		if errors.Is(err, provision.ErrNotFound) {
			// Removed by MaxAge between the two calls: answer as the
			// first ingest would have.
			return s.Response, true, nil
		}
		return nil, false, fmt.Errorf("natslog: append: duplicate of %d: %w", ack.Sequence, err)
	}
	return first.Response, true, nil
}

// get returns the submission stored at a stream sequence, and its events
// in their stored form when the message holds them so (see decode).
func (l *Log) get(ctx context.Context, seq uint64) (*provision.Submission, *batchcodec.Encoded, error) {
	raw, err := l.stream.GetMsg(ctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil, provision.ErrNotFound
		}
		return nil, nil, unavailable(err)
	}
	return decode(raw.Data)
}

// unavailable marks the errors of an engine that is down, partitioned or
// too slow with provision.ErrUnavailable.
func unavailable(err error) error {
	if err == nil || errors.Is(err, provision.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", provision.ErrUnavailable, err)
}
