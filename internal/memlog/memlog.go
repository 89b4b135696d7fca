// Package memlog is the log and the checkpoints in memory, for tests of
// what sits on either side of the log. It passes the whole store contract
// (internal/storetest), so a test over it sees what the engines do:
// resends answered with the first answer, batch ids scoped to their
// installation, the location taken from the events that carry it.
package memlog

import (
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/provisionhq/provision"
)

// Log is a provision.Log and provision.Checkpoints in memory.
type Log struct {
	mu          sync.Mutex
	recs        []provision.Record
	batches     map[batchKey][]byte
	checkpoints map[string]int64
	fail        error
}

// batchKey is a batch's idempotence key: batch ids are an installation's.
type batchKey struct{ installation, batch string }

// New returns an empty log.
func New() *Log {
	return &Log{batches: map[batchKey][]byte{}, checkpoints: map[string]int64{}}
}

// SetFail makes every call return err until it is set to nil: a store
// outage.
func (l *Log) SetFail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail = err
}

func (l *Log) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.fail
}

// Append implements provision.Log.
func (l *Log) Append(ctx context.Context, s *provision.Submission) ([]byte, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return nil, false, err
	}
	key := batchKey{s.InstallationID, s.BatchID}
	if r, ok := l.batches[key]; ok {
		return r, true, nil
	}
	l.batches[key] = s.Response
	// As in the engines, an event is stored once because its batch is: no
	// index of event ids is kept.
	for _, ev := range s.Events {
		l.recs = append(l.recs, provision.NewRecord(int64(len(l.recs)+1), s, ev))
	}
	return s.Response, false, nil
}

// Read implements provision.Log.
func (l *Log) Read(ctx context.Context, after int64, limit int) ([]provision.Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	i := sort.Search(len(l.recs), func(i int) bool { return l.recs[i].Seq > after })
	return slices.Clone(l.recs[i:min(i+limit, len(l.recs))]), nil
}

// Head implements provision.Log.
func (l *Log) Head(ctx context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return 0, err
	}
	return int64(len(l.recs)), nil
}

// Len is the number of records.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}

// Checkpoint implements provision.Checkpoints.
func (l *Log) Checkpoint(ctx context.Context, consumer string) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return 0, err
	}
	return l.checkpoints[consumer], nil
}

// SetCheckpoint implements provision.Checkpoints.
func (l *Log) SetCheckpoint(ctx context.Context, consumer string, seq int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return err
	}
	l.checkpoints[consumer] = seq
	return nil
}

// Close does nothing: the log lives as long as its last reference.
func (l *Log) Close() error { return nil }
