// Package sqlite is the embedded store: the durable, ordered log of accepted
// events, the raw event store derived from it, and the consumers'
// checkpoints, in one SQLite file through a pure-Go driver so that the
// binary cross-compiles.
//
// Durability: the database runs in WAL mode with synchronous=FULL, so a
// commit returns only after the WAL has been fsync'd. NORMAL would survive a
// killed process but not a power cut, and an acknowledged batch must survive
// both.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/provisionhq/provision"
)

// Store is the SQLite store. It implements provision.Log and
// provision.Checkpoints and is safe for concurrent use.
type Store struct {
	db *sql.DB

	// appendMu is held by the appender committing a group: SQLite has one
	// writer at a time anyway, and waiting here is cheaper and fairer than
	// SQLite's busy polling.
	appendMu sync.Mutex
	queueMu  sync.Mutex
	queue    []*pendingAppend
	// lastGroup is the size of the last group committed (under
	// appendMu); wait is time.Sleep but in tests.
	lastGroup int
	wait      func(time.Duration)

	insertKey   *sql.Stmt
	insertBatch *sql.Stmt
	selectHead  *sql.Stmt

	closeOnce sync.Once
	closeErr  error
}

var (
	_ provision.Log         = (*Store)(nil)
	_ provision.Checkpoints = (*Store)(nil)
)

// maxConns bounds the connection pool: readers run concurrently in WAL
// mode, writers queue on SQLite's lock with a busy timeout.
const maxConns = 8

// Open opens (creating if needed) the database file at path and applies the
// embedded migrations that it lacks.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	// Deleted content is overwritten with zeros, so an erased installation
	// does not linger in free pages or in the free space of a page. It
	// costs only on deletes and overwrites, never on appends.
	q.Add("_pragma", "secure_delete(ON)")
	// The page size (4 KB) and the auto-checkpoint (every 1000 pages, run
	// by the committing writer) stay the engine's defaults. Larger pages
	// halve the WAL's write calls per batch but rewrite larger hot pages
	// (roots, leaves, sqlite_sequence) on every commit, and a longer or
	// background checkpoint copies the same pages: neither lowered the CPU
	// per batch of BenchmarkWriteGroup. Nor did fdatasync for fsync.
	// Most of a commit's CPU is its write calls and its sync.
	// Writers take the write lock at BEGIN, so two transactions that both
	// read then write cannot deadlock on lock upgrade.
	q.Set("_txlock", "immediate")
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if err := convertEventRows(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	s := &Store{db: db, wait: time.Sleep}
	if s.insertKey, err = db.PrepareContext(ctx, insertKeySQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if s.insertBatch, err = db.PrepareContext(ctx, insertBatchSQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if s.selectHead, err = db.PrepareContext(ctx, selectHeadSQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// DB returns the database handle so that other areas (rollups, forwarders,
// privacy jobs) can run their own queries on their own tables. Writers
// should keep transactions short: ingest waits for them.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// Fold the WAL into the main file so the next start is quick.
		s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// probePad is the size of the random padding the probe writes: more than
// a page, so each probe allocates an overflow page and appends several
// frames to the WAL, as an append does.
const probePad = 4096 + 512

// Ping checks that the store takes a write now: it rewrites the probe's row
// in a transaction whose commit appends to the WAL and fsyncs it
// (synchronous=FULL), so a full disk or an unwritable file fails it with
// provision.ErrUnavailable, and it passes again once space returns.
// Readiness probes use it; callers rate-limit it.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO health_probe (id, probed_at, pad) VALUES (1, ?, randomblob(?))
		ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at, pad = excluded.pad`,
		time.Now().UnixNano(), probePad)
	return wrap("ping", err)
}

// wrap adds the operation and marks transient engine errors as
// provision.ErrUnavailable, so that ingest answers 503 and agents retry.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM:
			return fmt.Errorf("%s: %w: %w", op, provision.ErrUnavailable, err)
		}
	}
	if errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%s: %w: %w", op, provision.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
