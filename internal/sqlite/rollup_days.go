package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/provisionhq/provision/internal/rollup"
)

var _ rollup.DayStore = (*RollupStore)(nil)

// ReplaceDays implements rollup.DayStore: the refresh after erasures.
func (s *RollupStore) ReplaceDays(ctx context.Context, consumer string, through int64, days []string, d rollup.Delta) error {
	err := s.immediate(ctx, func(c *sql.Conn) error {
		// The write lock is held from the start: the checkpoint mergeAt
		// checks is the one the deletes ran under.
		for _, day := range days {
			if _, err := c.ExecContext(ctx, `DELETE FROM rollup_cells WHERE day = ?`, day); err != nil {
				return err
			}
		}
		return mergeAt(ctx, c, consumer, through, d.Cells)
	})
	return rollupErr("replace days", err)
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
