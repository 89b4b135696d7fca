package ingest

import (
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

// A device's clock can be hours, days or months off; the events carry
// its times. sent_at is read from the same clock when the request is
// made, so receipt time minus sent_at is how far that clock is off (plus
// the upload's own time, which the tolerance absorbs), and adding it to
// the events' times puts them on the server's clock. checkEnvelope bounds
// sent_at to MaxSentAtSkew of the server's clock: further off, the batch
// is refused (bad_sent_at) rather than moved by years.

// clockSkew is the correction of a batch sent at sentAt and received at
// now: their difference when it exceeds the tolerance, else zero.
func (l *Limits) clockSkew(sentAt, now time.Time) time.Duration {
	skew := now.Sub(sentAt)
	if skew.Abs() <= l.ClockSkewTolerance {
		return 0
	}
	return skew
}

// placeInTime adds skew to the times of the batch's accepted events,
// records it with each of them, and rejects (bad_time) those whose
// corrected time is outside the accepted window, keeping the rejections
// in index order.
func (l *Limits) placeInTime(b *decodedBatch, skew time.Duration, now time.Time, res *reservation) error {
	oldest, newest := now.Add(-l.MaxEventAge), now.Add(l.MaxClockSkew)
	var late []wire.Rejection
	kept := 0
	// The accepted events are the batch's indexes minus the rejected
	// ones, in order; Rejected holds at most one per index, sorted.
	index, r := 0, 0
	for k := range b.Events {
		for r < len(b.Rejected) && b.Rejected[r].Index == index {
			index, r = index+1, r+1
		}
		i := index
		index++
		ev := &b.Events[k]
		if skew != 0 {
			ev.Time, ev.ClockSkew = ev.Time.Add(skew), skew
		}
		if ev.Time.Before(oldest) || ev.Time.After(newest) {
			late = append(late, wire.Rejection{Index: i, Code: wire.RejectBadTime, Path: "time", Message: "event time is outside the accepted window"})
			continue
		}
		b.Events[kept], b.fieldSpans[kept] = *ev, b.fieldSpans[k]
		kept++
	}
	if len(late) == 0 {
		return nil
	}
	clear(b.Events[kept:])
	b.Events, b.fieldSpans = b.Events[:kept], b.fieldSpans[:kept]
	charge := int64(len(late)+len(b.Rejected)) * rejectionSize
	for i := range late {
		charge += messageCharge(&late[i])
	}
	if err := res.grow(charge); err != nil {
		return err
	}
	b.Rejected = mergeByIndex(b.Rejected, late)
	return nil
}
