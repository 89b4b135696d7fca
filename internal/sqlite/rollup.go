package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/provisionhq/provision/internal/rollup"
)

// RollupStore keeps rollups in SQLite (tables of migration 0100). SQLite
// has one writer at a time: Apply takes the write lock when it begins
// (BEGIN IMMEDIATE), so concurrent workers merge one after another and no
// update is lost.
type RollupStore struct {
	db *sql.DB
}

var _ rollup.Store = (*RollupStore)(nil)

// NewRollupStore returns the rollup store of an open database.
func NewRollupStore(db *sql.DB) *RollupStore { return &RollupStore{db: db} }

func (s *RollupStore) Checkpoint(ctx context.Context, consumer string) (int64, error) {
	seq, err := readCheckpoint(ctx, s.db, "rollup_checkpoints", consumer)
	if err != nil {
		return 0, fmt.Errorf("sqlite: rollup checkpoint: %w", err)
	}
	return seq, nil
}

// rollupErr names the operation in err; a lost race (rollup.ErrConflict)
// is returned as it is, for the caller to retry.
func rollupErr(op string, err error) error {
	if err == nil || errors.Is(err, rollup.ErrConflict) {
		return err
	}
	return fmt.Errorf("sqlite: rollup %s: %w", op, err)
}

// immediate runs fn in a transaction that holds the write lock from its start.
func (s *RollupStore) immediate(ctx context.Context, fn func(c *sql.Conn) error) (err error) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `PRAGMA busy_timeout = 10000`); err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, _ = c.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()
	if err = fn(c); err != nil {
		return err
	}
	_, err = c.ExecContext(ctx, `COMMIT`)
	return err
}

func (s *RollupStore) Apply(ctx context.Context, consumer string, from, to int64, d rollup.Delta) error {
	err := s.immediate(ctx, func(c *sql.Conn) error {
		if err := mergeAt(ctx, c, consumer, from, d.Cells); err != nil {
			return err
		}
		for _, ct := range d.Certs {
			if _, err := c.ExecContext(ctx, rollup.UpsertCertSQL,
				ct.View, ct.ID, ct.Subject, ct.Issuer, timeText(ct.NotBefore), timeText(ct.NotAfter), ct.SelfSigned, ct.DER); err != nil {
				return err
			}
		}
		_, err := c.ExecContext(ctx, `INSERT INTO rollup_checkpoints (consumer, seq) VALUES (?, ?)
			ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq`, consumer, to)
		return err
	})
	return rollupErr("apply", err)
}

// mergeAt merges the cells into the stored ones, inside the write
// transaction, provided the consumer's checkpoint is still at want:
// otherwise another writer moved it, and it returns rollup.ErrConflict.
func mergeAt(ctx context.Context, c *sql.Conn, consumer string, want int64, cells []*rollup.Cell) error {
	cur, err := readCheckpoint(ctx, c, "rollup_checkpoints", consumer)
	if err != nil {
		return err
	}
	if cur != want {
		return rollup.ErrConflict
	}
	return mergeCells(ctx, c, cells)
}

// mergeCells adds the cells to those stored, with statements prepared once:
// a delta has hundreds of cells, and preparing each query again cost more
// than running it.
func mergeCells(ctx context.Context, c *sql.Conn, cells []*rollup.Cell) error {
	if len(cells) == 0 {
		return nil
	}
	get, err := c.PrepareContext(ctx, `SELECT events, weight, failures, installs, durations FROM rollup_cells WHERE day = ? AND view = ? AND dims = ?`)
	if err != nil {
		return err
	}
	defer get.Close()
	put, err := c.PrepareContext(ctx, `INSERT INTO rollup_cells (day, view, dims, events, weight, failures, installs, durations, installs_distinct)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (day, view, dims) DO UPDATE SET events = excluded.events, weight = excluded.weight,
			failures = excluded.failures, installs = excluded.installs, durations = excluded.durations,
			installs_distinct = excluded.installs_distinct`)
	if err != nil {
		return err
	}
	defer put.Close()
	m := merger{get: get, put: put}
	for _, cell := range cells {
		if err := m.mergeCell(ctx, cell); err != nil {
			return err
		}
	}
	return nil
}

type merger struct{ get, put *sql.Stmt }

func (m *merger) mergeCell(ctx context.Context, cell *rollup.Cell) error {
	var events, weight, failures int64
	var inst, dur []byte
	err := m.get.QueryRowContext(ctx, cell.Day, cell.View, cell.Dims).Scan(&events, &weight, &failures, &inst, &dur)
	var old *rollup.Cell
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	default:
		if old, err = rollup.DecodeCell(cell.Key, events, weight, failures, rollup.Encoded{Installs: inst, Durations: dur}); err != nil {
			return err
		}
	}
	vals, err := rollup.MergedValues(old, cell)
	if err != nil {
		return err
	}
	_, err = m.put.ExecContext(ctx, vals...)
	return err
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *RollupStore) Cells(ctx context.Context, q rollup.Query) ([]*rollup.Cell, error) {
	var where []string
	var args []any
	if len(q.Views) > 0 {
		where = append(where, "view IN ("+strings.TrimSuffix(strings.Repeat("?,", len(q.Views)), ",")+")")
		for _, v := range q.Views {
			args = append(args, v)
		}
	}
	if q.From != "" {
		where = append(where, "day >= ?")
		args = append(args, q.From)
	}
	if q.To != "" {
		where = append(where, "day <= ?")
		args = append(args, q.To)
	}
	query := `SELECT day, view, dims, events, weight, failures, installs, durations, installs_distinct FROM rollup_cells`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	// Sorted here, not by ORDER BY: the plan reads the (view, day) index and
	// would sort every row, sketches included, in a temporary B-tree on
	// disk (tens of megabytes for a month of a large fleet).
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: rollup cells: %w", err)
	}
	defer rows.Close()
	var out []*rollup.Cell
	for rows.Next() {
		var k rollup.Key
		var events, weight, failures int64
		var inst, dur sql.RawBytes // the decoders copy what they keep
		var distinct *int64
		if err := rows.Scan(&k.Day, &k.View, &k.Dims, &events, &weight, &failures, &inst, &dur, &distinct); err != nil {
			return nil, fmt.Errorf("sqlite: rollup cells: %w", err)
		}
		c, err := rollup.DecodeCell(k, events, weight, failures, rollup.Encoded{Installs: inst, Durations: dur, Distinct: distinct})
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: rollup cells: %w", err)
	}
	rollup.SortCells(out)
	return out, nil
}

func (s *RollupStore) Certs(ctx context.Context, view string) ([]rollup.Cert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, subject, issuer, not_before, not_after, self_signed, der FROM rollup_certs WHERE view = ? ORDER BY id`, view)
	if err != nil {
		return nil, fmt.Errorf("sqlite: rollup certs: %w", err)
	}
	defer rows.Close()
	var out []rollup.Cert
	for rows.Next() {
		c := rollup.Cert{View: view}
		var nb, na string
		if err := rows.Scan(&c.ID, &c.Subject, &c.Issuer, &nb, &na, &c.SelfSigned, &c.DER); err != nil {
			return nil, fmt.Errorf("sqlite: rollup certs: %w", err)
		}
		if nb != "" {
			c.NotBefore, _ = time.Parse(time.RFC3339, nb)
			c.NotAfter, _ = time.Parse(time.RFC3339, na)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *RollupStore) Reset(ctx context.Context) error {
	err := s.immediate(ctx, func(c *sql.Conn) error {
		for _, t := range []string{"rollup_cells", "rollup_certs", "rollup_checkpoints"} {
			if _, err := c.ExecContext(ctx, `DELETE FROM `+t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: rollup reset: %w", err)
	}
	return nil
}

func (s *RollupStore) HashKey(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO rollup_key (id, key) VALUES (1, ?)`, fresh); err != nil {
		return nil, fmt.Errorf("sqlite: rollup key: %w", err)
	}
	var key []byte
	if err := s.db.QueryRowContext(ctx, `SELECT key FROM rollup_key WHERE id = 1`).Scan(&key); err != nil {
		return nil, fmt.Errorf("sqlite: rollup key: %w", err)
	}
	return key, nil
}
