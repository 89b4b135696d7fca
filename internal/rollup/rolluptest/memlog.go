// Package rolluptest holds what the rollup, report and web tests share: an
// in-memory log, a generated fleet with planted incidents, and the contract
// every rollup.Store must pass.
package rolluptest

import (
	"context"
	"sort"
	"sync"

	provision "github.com/provisionhq/provision"
)

// MemLog is a provision.Log in memory.
type MemLog struct {
	mu      sync.Mutex
	records []provision.Record
	batches map[string][]byte
}

// NewMemLog returns an empty log.
func NewMemLog() *MemLog { return &MemLog{batches: make(map[string][]byte)} }

func (l *MemLog) Append(_ context.Context, s *provision.Submission) ([]byte, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if resp, ok := l.batches[s.BatchID]; ok {
		return resp, true, nil
	}
	l.batches[s.BatchID] = s.Response
	for _, ev := range s.Events {
		l.records = append(l.records, provision.Record{
			Seq: int64(len(l.records) + 1), BatchID: s.BatchID, InstallationID: s.InstallationID,
			Region: s.Region, Country: s.Country, Subdivision: s.Subdivision,
			ReceivedAt: s.ReceivedAt, Event: ev,
		})
	}
	return s.Response, false, nil
}

func (l *MemLog) Read(_ context.Context, after int64, limit int) ([]provision.Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.records), func(i int) bool { return l.records[i].Seq > after })
	j := min(i+limit, len(l.records))
	return append([]provision.Record(nil), l.records[i:j]...), nil
}

func (l *MemLog) Head(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.records)), nil
}

// Len returns the number of records.
func (l *MemLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.records)
}
