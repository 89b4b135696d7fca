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
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM rollup_checkpoints WHERE consumer = ?`, consumer).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: rollup checkpoint: %w", err)
	}
	return seq, nil
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
		var cur int64
		err := c.QueryRowContext(ctx, `SELECT seq FROM rollup_checkpoints WHERE consumer = ?`, consumer).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if cur != from {
			return rollup.ErrConflict
		}
		for _, cell := range d.Cells {
			if err := mergeCell(ctx, c, cell); err != nil {
				return err
			}
		}
		for _, ct := range d.Certs {
			if _, err := c.ExecContext(ctx, `INSERT INTO rollup_certs (view, id, subject, issuer, not_before, not_after, self_signed, der)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (view, id) DO UPDATE SET subject = excluded.subject, issuer = excluded.issuer,
					not_before = excluded.not_before, not_after = excluded.not_after,
					self_signed = excluded.self_signed, der = excluded.der
				WHERE rollup_certs.der IS NULL AND excluded.der IS NOT NULL`,
				ct.View, ct.ID, ct.Subject, ct.Issuer, timeText(ct.NotBefore), timeText(ct.NotAfter), ct.SelfSigned, ct.DER); err != nil {
				return err
			}
		}
		_, err = c.ExecContext(ctx, `INSERT INTO rollup_checkpoints (consumer, seq) VALUES (?, ?)
			ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq`, consumer, to)
		return err
	})
	if errors.Is(err, rollup.ErrConflict) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlite: rollup apply: %w", err)
	}
	return nil
}

func mergeCell(ctx context.Context, c *sql.Conn, cell *rollup.Cell) error {
	var events, weight, failures int64
	var inst, dur []byte
	err := c.QueryRowContext(ctx, `SELECT events, weight, failures, installs, durations FROM rollup_cells WHERE day = ? AND view = ? AND dims = ?`,
		cell.Day, cell.View, cell.Dims).Scan(&events, &weight, &failures, &inst, &dur)
	merged := cell
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	default:
		old, err := rollup.DecodeCell(cell.Key, events, weight, failures, rollup.Encoded{Installs: inst, Durations: dur})
		if err != nil {
			return err
		}
		if err := old.Merge(cell); err != nil {
			return err
		}
		merged = old
	}
	e, err := merged.Encode()
	if err != nil {
		return err
	}
	_, err = c.ExecContext(ctx, `INSERT INTO rollup_cells (day, view, dims, events, weight, failures, installs, durations, installs_distinct)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (day, view, dims) DO UPDATE SET events = excluded.events, weight = excluded.weight,
			failures = excluded.failures, installs = excluded.installs, durations = excluded.durations,
			installs_distinct = excluded.installs_distinct`,
		merged.Day, merged.View, merged.Dims, merged.Events, merged.Weight, merged.Failures, e.Installs, e.Durations, e.Distinct)
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
