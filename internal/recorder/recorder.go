// Package recorder keeps what the test servers observe (requests, bodies,
// breaches of a rule) for the test to read while the server still runs.
package recorder

import (
	"slices"
	"sync"
)

// List is a list that handlers append to and tests read, safe for
// concurrent use. The zero value is empty and ready.
type List[T any] struct {
	mu    sync.Mutex
	items []T
}

// Add appends vs.
func (l *List[T]) Add(vs ...T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items = append(l.items, vs...)
}

// All returns a copy of everything added, in the order it was added.
func (l *List[T]) All() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.items)
}
