package outbox

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.swap.RLock()
	defer s.swap.RUnlock()
	return s.db.Update(fn)
}

func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.swap.RLock()
	defer s.swap.RUnlock()
	return s.db.View(fn)
}

func (s *Store) batch(fn func(*bolt.Tx) error) error {
	s.swap.RLock()
	defer s.swap.RUnlock()
	return s.db.Batch(fn)
}

// Compact rewrites the file with only what it holds now. bbolt frees the
// pages of deleted records without clearing them, so after a withdrawal
// the old installation id and the withdrawn events' bytes would stay in
// the file until the pages are reused; the rewritten file has none of
// them, and the old file is unlinked.
//
// Another process that has the file open at the time keeps reading the
// unlinked copy until it closes it.
func (s *Store) Compact() error {
	s.swap.Lock()
	defer s.swap.Unlock()
	tmp := s.path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("outbox: compact: %w", err)
	}
	if err := bolt.Compact(dst, s.db, 1<<20); err != nil {
		dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("outbox: compact: %w", err)
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("outbox: compact: %w", err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("outbox: compact: %w", err)
	}
	renameErr := os.Rename(tmp, s.path)
	if renameErr == nil {
		syncDir(filepath.Dir(s.path))
	} else {
		_ = os.Remove(tmp)
	}
	// Reopen whichever file is in place, so the store stays usable.
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("outbox: reopen after compaction: %w", err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	s.db = db
	if renameErr != nil {
		return fmt.Errorf("outbox: compact: %w", renameErr)
	}
	return nil
}

// syncDir makes a rename durable where the system allows it; Windows
// cannot open a directory, and there the rename is durable already.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
