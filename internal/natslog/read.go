package natslog

import (
	"context"
	"errors"
	"fmt"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
)

// Record sequence numbers on this log are the stream sequence of the
// submission's message times seqStride plus the event's index in it, so they
// increase with every append and a record can be found from its Seq alone.
func recordSeq(streamSeq uint64, index int) int64 {
	return int64(streamSeq)*seqStride + int64(index)
}

// maxRead bounds one Read, whatever limit the caller asks for.
const maxRead = 10000

// Read implements provision.Log. It walks the stream with direct gets, which
// any replica can serve; workers use durable consumers instead.
func (l *Log) Read(ctx context.Context, after int64, limit int) ([]provision.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	limit = min(limit, maxRead)
	info, err := l.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("natslog: read: %w", unavailable(err))
	}
	last := info.State.LastSeq
	start := max(uint64(max(after, 0))/seqStride, info.State.FirstSeq, 1)
	var out []provision.Record
	for seq := start; seq <= last && len(out) < limit; seq++ {
		sub, enc, err := l.get(ctx, seq)
		if errors.Is(err, provision.ErrNotFound) {
			continue // removed by MaxAge or by an operator
		}
		if err != nil {
			return nil, fmt.Errorf("natslog: read %d: %w", seq, err)
		}
		es, err := entries(sub, enc)
		if err != nil {
			return nil, fmt.Errorf("natslog: read %d: %w", seq, err)
		}
		// As in the stores: each record is built by provision.NewRecord.
		h := batchcodec.Header{
			First: recordSeq(seq, 0), BatchID: sub.BatchID, InstallationID: sub.InstallationID, Region: sub.Region,
			ReceivedAt: sub.ReceivedAt,
		}
		for i := range es {
			r := h.Record(&es[i])
			if r.Seq <= after {
				continue
			}
			out = append(out, r)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// headScan bounds how many trailing messages without events Head looks
// through before it settles for the last message's first position.
const headScan = 1000

// Head implements provision.Log: the Seq of the last event on the stream.
func (l *Log) Head(ctx context.Context) (int64, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("natslog: head: %w", unavailable(err))
	}
	last, first := info.State.LastSeq, max(info.State.FirstSeq, 1)
	for seq := last; seq >= first && last-seq < headScan && seq > 0; seq-- {
		sub, enc, err := l.get(ctx, seq)
		if errors.Is(err, provision.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("natslog: head: %w", err)
		}
		if enc != nil {
			return recordSeq(seq, int(enc.Summary.Last)), nil
		}
		if n := len(sub.Events); n > 0 {
			return recordSeq(seq, n-1), nil
		}
	}
	if last == 0 || last-first+1 <= headScan {
		return 0, nil
	}
	// Only answers without events at the end: no record lies beyond the
	// last message's first position.
	return recordSeq(last, 0), nil
}

var _ provision.Log = (*Log)(nil)
