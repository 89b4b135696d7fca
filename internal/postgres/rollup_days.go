package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/provisionhq/provision/internal/rollup"
)

var _ rollup.DayStore = (*RollupStore)(nil)

// ReplaceDays implements rollup.DayStore: the refresh after erasures. The
// cells of the days are deleted and written again in the transaction that
// holds the consumer's checkpoint row, so no update interleaves.
func (r *RollupStore) ReplaceDays(ctx context.Context, consumer string, through int64, days []string, d rollup.Delta) error {
	cells := append([]*rollup.Cell(nil), d.Cells...)
	rollup.SortCells(cells)
	err := pgx.BeginFunc(ctx, r.s.pool, func(tx pgx.Tx) error {
		var cur int64
		err := tx.QueryRow(ctx, `SELECT seq FROM rollup_checkpoints WHERE consumer = $1 FOR UPDATE`, consumer).Scan(&cur)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if cur != through {
			return rollup.ErrConflict
		}
		if _, err := tx.Exec(ctx, `DELETE FROM rollup_cells WHERE day = ANY($1)`, days); err != nil {
			return err
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // no checkpoint yet: nothing was ever applied
		}
		return applyTx(ctx, tx, consumer, through, through, cells, nil)
	})
	if err != nil {
		return rollupErr("replace days", err)
	}
	// The old cells held the erased installation's dimension values.
	r.s.requestVacuum()
	return nil
}

// DropBefore implements rollup.DayStore: the retention of derived data.
func (r *RollupStore) DropBefore(ctx context.Context, day string) (int64, error) {
	cutoff, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return 0, err
	}
	var n int64
	err = pgx.BeginFunc(ctx, r.s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM rollup_cells WHERE day < $1`, day)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		tag, err = tx.Exec(ctx, `DELETE FROM rollup_certs WHERE not_after IS NOT NULL AND not_after < $1`, cutoff)
		if err != nil {
			return err
		}
		n += tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: rollup retention: %w", classify(err))
	}
	return n, nil
}
