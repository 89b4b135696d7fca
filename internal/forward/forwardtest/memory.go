// Package forwardtest holds what the forwarders' tests share: in-memory
// state (the log is internal/memlog), the contract test every forward.State must
// pass, and local HTTPS peers standing in for the recipients — a server
// enforcing the documented Measurement Protocol rules (the real Google
// Analytics is not reachable from tests) and a webhook receiver that
// verifies signatures and the replay window.
package forwardtest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/provisionhq/provision/internal/forward"
)

// State is an in-memory forward.State.
type State struct {
	mu     sync.Mutex
	sent   map[[3]string]time.Time
	dead   []forward.DeadLetter
	nextID int64
}

// NewState returns an empty state.
func NewState() *State { return &State{sent: map[[3]string]time.Time{}} }

// Sent implements forward.State.
func (s *State) Sent(_ context.Context, recipient, installationID, day string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sent[[3]string{recipient, installationID, day}]
	return ok, nil
}

// MarkSent implements forward.State.
func (s *State) MarkSent(_ context.Context, recipient, installationID, day string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [3]string{recipient, installationID, day}
	if _, ok := s.sent[k]; !ok {
		s.sent[k] = at
	}
	return nil
}

// PruneSent implements forward.State.
func (s *State) PruneSent(_ context.Context, before string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.sent {
		if k[2] < before {
			delete(s.sent, k)
			n++
		}
	}
	return n, nil
}

// AddDeadLetter implements forward.State.
func (s *State) AddDeadLetter(_ context.Context, dl *forward.DeadLetter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	dl.ID = s.nextID
	c := *dl
	c.Count = slices.Clone(dl.Count)
	s.dead = append(s.dead, c)
	return nil
}

// DeadLetters implements forward.State.
func (s *State) DeadLetters(_ context.Context, recipient string, limit int) ([]forward.DeadLetter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []forward.DeadLetter
	for _, dl := range s.dead {
		if dl.Recipient == recipient && len(out) < limit {
			out = append(out, dl)
		}
	}
	return out, nil
}

// DeleteDeadLetter implements forward.State.
func (s *State) DeleteDeadLetter(_ context.Context, recipient string, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead = slices.DeleteFunc(s.dead, func(dl forward.DeadLetter) bool { return dl.Recipient == recipient && dl.ID == id })
	return nil
}

// CountDeadLetters implements forward.State.
func (s *State) CountDeadLetters(_ context.Context, recipient string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, dl := range s.dead {
		if dl.Recipient == recipient {
			n++
		}
	}
	return n, nil
}

// Forget implements forward.State.
func (s *State) Forget(_ context.Context, installationID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.sent {
		if k[1] == installationID {
			delete(s.sent, k)
		}
	}
	s.dead = slices.DeleteFunc(s.dead, func(dl forward.DeadLetter) bool { return dl.InstallationID == installationID })
	return nil
}

// ExpireDeadLetters implements forward.DeadLetterExpirer.
func (s *State) ExpireDeadLetters(_ context.Context, before string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.dead)
	s.dead = slices.DeleteFunc(s.dead, func(dl forward.DeadLetter) bool { return dl.Day < before })
	return n - len(s.dead), nil
}

// Suppressed is an in-memory erasure list: a forward.Suppressor.
type Suppressed struct {
	mu  sync.Mutex
	ids map[string]bool
}

// Add puts an installation on the list.
func (s *Suppressed) Add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	s.ids[id] = true
}

// Suppressed implements forward.Suppressor.
func (s *Suppressed) Suppressed(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id], nil
}
