package rollup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrConflict means the consumer's checkpoint was not where the caller
// expected: another worker applied that part of the log first. Nothing was
// changed; the caller reads the checkpoint again and carries on from there.
var ErrConflict = errors.New("rollup: checkpoint moved")

// Delta is what one pass over a slice of the log adds.
type Delta struct {
	Cells []*Cell
	Certs []Cert
}

// Query selects stored cells: days From..To inclusive (empty means open)
// of the named views.
type Query struct {
	Views    []string
	From, To string
}

// Store keeps cells and their consumers' checkpoints. Implementations:
// MemoryStore here, package sqlite, package postgres.
//
// Apply is the one write. It must be atomic and safe under concurrency:
// when consumer's checkpoint equals from, it merges every delta cell into the
// stored cell of the same key (creating it when absent), records the
// certificates not yet known, and sets the checkpoint to to, all in one
// transaction; otherwise it changes nothing and returns ErrConflict.
// Merges from different consumers into the same cell must not lose updates
// (row locks, or a serialised writer).
type Store interface {
	// Checkpoint returns the last log Seq applied for consumer, 0 if none.
	Checkpoint(ctx context.Context, consumer string) (int64, error)
	Apply(ctx context.Context, consumer string, from, to int64, d Delta) error
	// Cells returns the matching cells ordered by Day, View, Dims.
	Cells(ctx context.Context, q Query) ([]*Cell, error)
	// Certs returns the known certificates of a view ordered by ID.
	Certs(ctx context.Context, view string) ([]Cert, error)
	// Reset drops every cell, certificate and rollup checkpoint; the hash
	// key stays so that a rebuild gives the same sketches.
	Reset(ctx context.Context) error
	// HashKey returns the deployment's key for hashing installation ids,
	// creating it on first use.
	HashKey(ctx context.Context) ([]byte, error)
}

// MemoryStore is a Store in memory: the reference for the contract tests
// and a fast back end for benchmarks and one-shot reports.
type MemoryStore struct {
	mu          sync.Mutex
	cells       map[Key]*Cell
	certs       map[string]Cert
	checkpoints map[string]int64
	key         []byte
}

// NewMemoryStore returns an empty store whose hash key is key.
func NewMemoryStore(key []byte) *MemoryStore {
	return &MemoryStore{
		cells:       make(map[Key]*Cell),
		certs:       make(map[string]Cert),
		checkpoints: make(map[string]int64),
		key:         slices.Clone(key),
	}
}

func (m *MemoryStore) Checkpoint(_ context.Context, consumer string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checkpoints[consumer], nil
}

func (m *MemoryStore) Apply(_ context.Context, consumer string, from, to int64, d Delta) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checkpoints[consumer] != from {
		return ErrConflict
	}
	// Merge into copies first so that a failed merge leaves nothing behind.
	merged := make(map[Key]*Cell, len(d.Cells))
	for _, c := range d.Cells {
		cur := merged[c.Key]
		if cur == nil {
			if old := m.cells[c.Key]; old != nil {
				cur = old.Clone()
			} else {
				cur = NewCell(c.Key)
			}
			merged[c.Key] = cur
		}
		if err := cur.Merge(c); err != nil {
			return err
		}
	}
	for k, c := range merged {
		m.cells[k] = c
	}
	for _, c := range d.Certs {
		k := c.View + "/" + c.ID
		if old, ok := m.certs[k]; !ok || (old.DER == nil && c.DER != nil) {
			m.certs[k] = c
		}
	}
	m.checkpoints[consumer] = to
	return nil
}

func (m *MemoryStore) Cells(_ context.Context, q Query) ([]*Cell, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Cell
	for k, c := range m.cells {
		if !q.match(k) {
			continue
		}
		out = append(out, c.Clone())
	}
	SortCells(out)
	return out, nil
}

func (q Query) match(k Key) bool {
	if len(q.Views) > 0 && !slices.Contains(q.Views, k.View) {
		return false
	}
	if q.From != "" && k.Day < q.From {
		return false
	}
	if q.To != "" && k.Day > q.To {
		return false
	}
	return true
}

// SortCells orders cells by Day, View, Dims.
func SortCells(cells []*Cell) {
	slices.SortFunc(cells, func(a, b *Cell) int {
		return cmpKey(a.Key, b.Key)
	})
}

func cmpKey(a, b Key) int {
	if c := strings.Compare(a.Day, b.Day); c != 0 {
		return c
	}
	if c := strings.Compare(a.View, b.View); c != 0 {
		return c
	}
	return strings.Compare(a.Dims, b.Dims)
}

func (m *MemoryStore) Certs(_ context.Context, view string) ([]Cert, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Cert
	for _, c := range m.certs {
		if c.View == view {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Cert) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (m *MemoryStore) Reset(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.cells)
	clear(m.certs)
	clear(m.checkpoints)
	return nil
}

func (m *MemoryStore) HashKey(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.key), nil
}

// ReplaceDays implements DayStore.
func (m *MemoryStore) ReplaceDays(_ context.Context, consumer string, through int64, days []string, d Delta) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checkpoints[consumer] != through {
		return ErrConflict
	}
	fresh := map[Key]*Cell{}
	for _, c := range d.Cells {
		if !slices.Contains(days, c.Day) {
			return fmt.Errorf("rollup: cell of %s outside the replaced days", c.Day)
		}
		cur := fresh[c.Key]
		if cur == nil {
			cur = NewCell(c.Key)
			fresh[c.Key] = cur
		}
		if err := cur.Merge(c); err != nil {
			return err
		}
	}
	for k := range m.cells {
		if slices.Contains(days, k.Day) {
			delete(m.cells, k)
		}
	}
	maps.Copy(m.cells, fresh)
	return nil
}

// DropBefore implements DayStore.
func (m *MemoryStore) DropBefore(_ context.Context, day string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for k := range m.cells {
		if k.Day < day {
			delete(m.cells, k)
			n++
		}
	}
	for k, c := range m.certs {
		if !c.NotAfter.IsZero() && c.NotAfter.UTC().Format(time.DateOnly) < day {
			delete(m.certs, k)
			n++
		}
	}
	return n, nil
}
