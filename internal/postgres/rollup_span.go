package postgres

import (
	"context"
	"fmt"

	"github.com/provisionhq/provision/internal/rollup"
)

var _ rollup.DaySpanner = (*RollupStore)(nil)

// DaySpan implements rollup.DaySpanner from the (view, day) index.
func (r *RollupStore) DaySpan(ctx context.Context, view, to string) (first, last string, err error) {
	var f, l *string
	err = r.s.pool.QueryRow(ctx, `SELECT min(day), max(day) FROM rollup_cells WHERE view = $1 AND ($2 = '' OR day <= $2)`,
		view, to).Scan(&f, &l)
	if err != nil {
		return "", "", fmt.Errorf("postgres: rollup day span: %w", classify(err))
	}
	if f != nil && l != nil {
		first, last = *f, *l
	}
	return first, last, nil
}
