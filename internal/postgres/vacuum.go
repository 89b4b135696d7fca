package postgres

import (
	"context"
	"sync"
	"time"
)

// vacuumTables are the tables whose rows name an installation and are
// deleted by erasure. VACUUM removes the dead tuples and their index
// entries, so the space is reused by the next writes; see docs/privacy.md
// for what stays on disk until then.
const vacuumTables = `log_batches, batch_keys, privacy_requests, privacy_notices, forward_sent, forward_dead_letters, rollup_cells`

// vacuumer runs VACUUM after erasures, batched: while one runs, any number
// of requests make one more run after it, not one each.
type vacuumer struct {
	mu      sync.Mutex
	running bool
	again   bool
	wg      sync.WaitGroup
	runs    int
}

// requestVacuum schedules a VACUUM of the erased tables after an erasure.
func (s *Store) requestVacuum() {
	v := &s.vacuum
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.running {
		v.again = true
		return
	}
	v.running = true
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			// VACUUM cannot run in a transaction; the pool's Exec does not
			// start one.
			if _, err := s.pool.Exec(ctx, `VACUUM `+vacuumTables); err != nil {
				s.log.Warn("vacuum after erasure failed", "err", err)
			}
			cancel()
			v.mu.Lock()
			v.runs++
			if !v.again {
				v.running = false
				v.mu.Unlock()
				return
			}
			v.again = false
			v.mu.Unlock()
		}
	}()
}

// WaitVacuum returns once no VACUUM requested so far is pending, and how
// many have run.
func (s *Store) WaitVacuum() int {
	s.vacuum.wg.Wait()
	s.vacuum.mu.Lock()
	defer s.vacuum.mu.Unlock()
	return s.vacuum.runs
}
