package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/provisionhq/provision/internal/rollup"
)

var _ rollup.DayStore = (*RollupStore)(nil)

// ReplaceDays implements rollup.DayStore: the refresh after erasures.
func (s *RollupStore) ReplaceDays(ctx context.Context, consumer string, through int64, days []string, d rollup.Delta) error {
	err := s.immediate(ctx, func(c *sql.Conn) error {
		var cur int64
		err := c.QueryRowContext(ctx, `SELECT seq FROM rollup_checkpoints WHERE consumer = ?`, consumer).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if cur != through {
			return rollup.ErrConflict
		}
		for _, day := range days {
			if _, err := c.ExecContext(ctx, `DELETE FROM rollup_cells WHERE day = ?`, day); err != nil {
				return err
			}
		}
		return mergeCells(ctx, c, d.Cells)
	})
	if errors.Is(err, rollup.ErrConflict) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlite: rollup replace days: %w", err)
	}
	return nil
}

// DropBefore implements rollup.DayStore: the retention of derived data.
func (s *RollupStore) DropBefore(ctx context.Context, day string) (int64, error) {
	var n int64
	err := s.immediate(ctx, func(c *sql.Conn) error {
		res, err := c.ExecContext(ctx, `DELETE FROM rollup_cells WHERE day < ?`, day)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		cutoff, err := time.Parse(time.DateOnly, day)
		if err != nil {
			return err
		}
		res, err = c.ExecContext(ctx, `DELETE FROM rollup_certs WHERE not_after <> '' AND not_after < ?`, timeText(cutoff))
		if err != nil {
			return err
		}
		m, _ := res.RowsAffected()
		n += m
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: rollup retention: %w", err)
	}
	return n, nil
}
